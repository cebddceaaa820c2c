"""Turn timelines, Prometheus export, and the bounded worker pool."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import aclosing

import pytest

from framecast import WorkerPool
from framecast.metrics import observe_timeline, render
from framecast.timeline import Timeline, TimelineBook


def test_timeline_reports_ms_from_end_of_user_speech_first_mark_wins() -> None:
    tl = Timeline(turn=3)
    tl.mark("first_audio_out", 11.2)
    tl.mark("user_speech_end", 10.0)
    tl.mark("llm_first_token", 10.45)
    tl.mark("llm_first_token", 10.9)  # later duplicate ignored
    assert tl.durations_ms() == {
        "user_speech_end_ms": 0.0,
        "llm_first_token_ms": 450.0,
        "first_audio_out_ms": 1200.0,
    }


def test_timeline_book_is_bounded() -> None:
    book = TimelineBook(keep=2)
    for turn in range(5):
        book.get(turn).mark("x", float(turn))
    assert book.pop(0) is None and book.pop(4) is not None


def test_prometheus_histograms_receive_stage_latencies() -> None:
    tl = Timeline(turn=1)
    tl.mark("user_speech_end", 1.0)
    tl.mark("first_audio_out", 1.9)
    observe_timeline(tl)
    text = render().decode()
    assert 'framecast_stage_latency_seconds_bucket{le="1.0",stage="first_audio_out"}' in text


async def test_worker_pool_runs_at_most_size_calls_at_once() -> None:
    pool = WorkerPool(2)
    running = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()
    loop = asyncio.get_running_loop()
    two_running: asyncio.Future[None] = loop.create_future()

    def work(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == 2:
                loop.call_soon_threadsafe(two_running.set_result, None)
        release.wait(5)
        with lock:
            running -= 1
        return i * i

    tasks = [asyncio.ensure_future(pool.run(work, i)) for i in range(6)]
    await two_running
    release.set()
    assert await asyncio.gather(*tasks) == [i * i for i in range(6)]
    assert peak == 2
    pool.close()


async def test_worker_pool_iterate_runs_generator_in_threads_and_closes_it_early() -> None:
    pool = WorkerPool(1)
    threads: set[str] = set()
    closed = threading.Event()

    def chunks() -> Iterator[int]:
        try:
            for i in range(100):
                threads.add(threading.current_thread().name)
                yield i
        finally:
            closed.set()

    got = []
    async with aclosing(pool.iterate(chunks)) as stream:
        async for item in stream:
            got.append(item)
            if item == 2:
                break
    assert got == [0, 1, 2]
    assert closed.is_set()
    assert threads and all(name.startswith("framecast-worker") for name in threads)
    pool.close()


async def test_worker_pool_propagates_errors() -> None:
    pool = WorkerPool(1)

    def bad() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await pool.run(bad)
    pool.close()


async def test_worker_pool_serves_waiters_by_priority_then_arrival() -> None:
    from framecast.workers import BACKGROUND, NORMAL, URGENT

    pool = WorkerPool(1)
    release = threading.Event()
    order: list[str] = []
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()

    def blocker() -> None:
        loop.call_soon_threadsafe(started.set_result, None)
        release.wait(5)

    def record(name: str) -> None:
        order.append(name)

    first = asyncio.ensure_future(pool.run(blocker))
    await started  # the only thread is busy: everything below waits
    waiting = [
        asyncio.ensure_future(pool.call(BACKGROUND, record, "partial")),
        asyncio.ensure_future(pool.call(NORMAL, record, "sentence 2")),
        asyncio.ensure_future(pool.call(URGENT, record, "final")),
        asyncio.ensure_future(pool.call(NORMAL, record, "sentence 3")),
        asyncio.ensure_future(pool.call(URGENT, record, "first words")),
    ]
    await asyncio.sleep(0)
    assert pool.saturated
    waiting[1].cancel()  # a caller that leaves while waiting takes nothing with it
    release.set()
    await first
    await asyncio.gather(*waiting, return_exceptions=True)
    assert order == ["final", "first words", "sentence 3", "partial"]
    assert not pool.saturated
    pool.close()
