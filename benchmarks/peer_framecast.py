"""framecast side of the overhead benchmark: the same workloads as ``peer_pipecat.py``.

The harness mirrors Pipecat's shape for shape (see that module's docstring):

* **source**: ``session.push(frame)`` — the session's head hands the frame to the
  first processor, as a transport's reader does.
* **processors**: plain pass-through :class:`framecast.Processor` instances.
* **sink**: the session's ``on_output`` callback, which stamps each frame with
  ``perf_counter_ns()`` on arrival. N processors make N + 1 hops.
* **waiting**: bare futures from ``loop.create_future()`` resolved by the sink.
* **interruption**: ``await first.interrupt()`` — what the input gate calls on
  barge-in: a new turn, older tasks cancelled and joined, queued old frames
  dropped, then an ``InterruptionFrame`` pushed downstream in-band. Latency ends
  when the 50th processor's ``process`` receives that frame.
* **backlog**: framecast has no hidden queues; a hop is a call. The backlog of
  200 old frames therefore sits in an explicit ``Boundary(256)`` in front of the
  slow processor (the place a real app would put one).
* **adversarial**: the sink yields once per frame (``await asyncio.sleep(0)``, the
  way a socket write drains), so the harness gets control while the speaker is still
  in its 200-chunk loop and interrupts it *mid-loop*. (Pipecat's harness can only
  interrupt after the loop, when all 200 chunks are in its queues.)
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from framecast import (
    AudioIn,
    AudioOut,
    Boundary,
    Direction,
    Frame,
    InterruptionFrame,
    Processor,
    Session,
    TextIn,
)

__all__ = ["run_framecast"]

IN_CHUNK = bytes(640)  # 20 ms of 16 kHz mono PCM16
OUT_CHUNK = bytes(960)  # 20 ms of 24 kHz mono PCM16
HOP_CHAIN = 10
INTERRUPT_CHAIN = 50
BACKLOG_FRAMES = 200
SLOW_FRAME_S = 0.001
ADVERSARIAL_FRAMES = 200
ADVERSARIAL_CHAIN = 10
FPS_FRAMES = {1: (20_000, 4_000), 10: (20_000, 4_000), 50: (5_000, 2_000)}  # (full, quick)
FPS_WARMUP_FRAMES = 1_000
RSS_PIPELINES = 100
RSS_CHAIN = 7
RUN_TIMEOUT_S = 300.0


class _Sink:
    """Records ``(perf_counter_ns, frame)`` for audio and text frames; resolves waiters."""

    def __init__(self, *, yields: bool = False) -> None:
        self.arrivals: list[tuple[int, Frame]] = []
        self._yields = yields
        self._frame_waiters: dict[int, asyncio.Future[int]] = {}
        self._count_waiter: tuple[int, asyncio.Future[int]] | None = None

    def reset(self) -> None:
        self.arrivals.clear()

    def expect_frame(self, frame: Frame) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._frame_waiters[id(frame)] = fut
        return fut

    def expect_count(self, count: int) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._count_waiter = (count, fut)
        return fut

    async def __call__(self, frame: Frame) -> None:
        if isinstance(frame, AudioIn | AudioOut | TextIn):
            now = time.perf_counter_ns()
            self.arrivals.append((now, frame))
            fut = self._frame_waiters.pop(id(frame), None)
            if fut is not None:
                fut.set_result(now)
            if self._count_waiter and len(self.arrivals) >= self._count_waiter[0]:
                self._count_waiter[1].set_result(now)
                self._count_waiter = None
            if self._yields:
                await asyncio.sleep(0)


class _Watched(Processor):
    """Last processor: reports when it sees an interruption; optionally slow (1 ms/text)."""

    def __init__(self, *, slow: bool = False) -> None:
        super().__init__()
        self._slow = slow
        self._waiter: asyncio.Future[int] | None = None

    def expect_interruption(self) -> asyncio.Future[int]:
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, InterruptionFrame):
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(time.perf_counter_ns())
        elif self._slow and isinstance(frame, TextIn):
            await asyncio.sleep(SLOW_FRAME_S)
        await self.push(frame, direction)


class _Speaker(Processor):
    """Adversarial TTS stand-in: on its trigger, pushes 200 chunks of that turn in a loop."""

    def __init__(self) -> None:
        super().__init__()
        self._trigger: Frame | None = None

    def arm(self, trigger: Frame) -> None:
        self._trigger = trigger

    async def process(self, frame: Frame, direction: Direction) -> None:
        if frame is self._trigger:
            for _ in range(ADVERSARIAL_FRAMES):
                await self.push(AudioOut(pcm=OUT_CHUNK, turn=frame.turn))
        await self.push(frame, direction)


def _chain(n: int) -> list[Processor]:
    return [Processor() for _ in range(n)]


async def _hop_us(make: Callable[[int], Frame], *, frames: int, reps: int) -> float:
    """Per-hop latency, one frame in flight, 10 pass-through processors (11 hops)."""
    sink = _Sink()
    session = Session(_chain(HOP_CHAIN), on_output=sink)
    medians: list[float] = []
    async with session:
        for rep in range(reps + 1):
            batch = [make(session.turn) for _ in range(frames // 4 if rep == 0 else frames)]
            latencies: list[float] = []
            for frame in batch:
                arrived = sink.expect_frame(frame)
                t0 = time.perf_counter_ns()
                await session.push(frame)
                latencies.append((await arrived - t0) / 1000 / (HOP_CHAIN + 1))
            sink.reset()
            if rep:
                medians.append(statistics.median(latencies))
    return statistics.median(medians)


async def _fps_audio(n: int, *, frames: int, reps: int) -> float:
    """Throughput of 20 ms audio frames through ``n`` processors, yielding between pushes."""
    sink = _Sink()
    session = Session(_chain(n), on_output=sink)
    rates: list[float] = []
    async with session:
        for rep in range(reps + 1):
            batch = [
                AudioIn(pcm=IN_CHUNK) for _ in range(FPS_WARMUP_FRAMES if rep == 0 else frames)
            ]
            sink.reset()
            done = sink.expect_count(len(batch))
            t0 = time.perf_counter_ns()
            for frame in batch:
                await session.push(frame)
                await asyncio.sleep(0)
            elapsed_s = (await done - t0) / 1e9
            sink.reset()
            if rep:
                rates.append(len(batch) / elapsed_s)
    return statistics.median(rates)


async def _interrupt_idle_us(*, trials: int, reps: int) -> float:
    """Interruption from a source processor to the 50th after it (50 hops), nothing in flight."""
    first, watched, sink = Processor(), _Watched(), _Sink()
    session = Session([first, *_chain(INTERRUPT_CHAIN - 1), watched], on_output=sink)
    medians: list[float] = []
    async with session:
        for rep in range(reps + 1):
            times: list[float] = []
            for _ in range(trials):
                seen = watched.expect_interruption()
                t0 = time.perf_counter_ns()
                await first.interrupt()
                times.append((await seen - t0) / 1000)
                marker = TextIn(text="marker", turn=session.turn)
                settled = sink.expect_frame(marker)
                await session.push(marker)
                await settled
                sink.reset()
            if rep:
                medians.append(statistics.median(times))
    return statistics.median(medians)


async def _interrupt_backlog(*, trials: int, reps: int) -> tuple[float, float]:
    """Interruption with 200 old-turn frames queued ahead of a slow 50th processor."""
    first, watched, sink = Processor(), _Watched(slow=True), _Sink()
    boundary = Boundary(maxsize=256)
    session = Session([first, *_chain(INTERRUPT_CHAIN - 2), boundary, watched], on_output=sink)
    latencies: list[float] = []
    stale_counts: list[float] = []
    async with session:
        for rep in range(reps + 1):
            times: list[float] = []
            stale: list[int] = []
            for _ in range(trials):
                old = [TextIn(text="old", turn=session.turn) for _ in range(BACKLOG_FRAMES)]
                sink.reset()
                speaking = sink.expect_count(1)
                for frame in old:
                    await session.push(frame)
                    await asyncio.sleep(0)
                await speaking
                seen = watched.expect_interruption()
                t0 = time.perf_counter_ns()
                await first.interrupt()
                times.append((await seen - t0) / 1000)
                marker = TextIn(text="marker", turn=session.turn)
                settled = sink.expect_frame(marker)
                await session.push(marker)
                await settled
                stale.append(sum(1 for at, f in sink.arrivals if at >= t0 and f is not marker))
                sink.reset()
            if rep:
                latencies.append(statistics.median(times))
                stale_counts.append(statistics.median(stale))
    return statistics.median(latencies), statistics.median(stale_counts)


async def _stale_adversarial(*, reps: int) -> float:
    """Chunks of the old turn reaching the sink after an interruption issued mid-loop."""
    first, speaker, sink = Processor(), _Speaker(), _Sink(yields=True)
    session = Session([first, speaker, *_chain(ADVERSARIAL_CHAIN)], on_output=sink)
    counts: list[int] = []
    async with session:
        for rep in range(reps + 1):
            trigger = TextIn(text="speak", turn=session.turn)
            speaker.arm(trigger)
            sink.reset()
            speaking = sink.expect_count(1)
            pushing = asyncio.ensure_future(session.push(trigger))
            await speaking  # the first chunk is out; the speaker is inside its loop
            t0 = time.perf_counter_ns()
            await first.interrupt()
            marker = TextIn(text="marker", turn=session.turn)
            settled = sink.expect_frame(marker)
            await session.push(marker)
            await settled
            await pushing
            counts.append(sum(1 for at, f in sink.arrivals if at >= t0 and isinstance(f, AudioOut)))
            if rep == 0:
                counts.clear()
    return statistics.median(counts)


def _rss_kb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


async def _rss_probe(reps: int) -> dict[str, float]:
    """Memory and tasks per running pipeline of 7 processors (fresh interpreter)."""
    live: list[Session] = []

    async def start(count: int) -> None:
        sessions = [Session(_chain(RSS_CHAIN)) for _ in range(count)]
        live.extend(sessions)
        await asyncio.gather(*(s.start() for s in sessions))

    kb: list[float] = []
    tasks: list[float] = []
    try:
        await start(2)
        # RSS moves in pages and arenas, coarser than a framecast session; the
        # traced heap growth gives the exact figure beside it.
        tracemalloc.start()
        heap0 = tracemalloc.get_traced_memory()[0]
        await start(RSS_PIPELINES)
        heap_kb = (tracemalloc.get_traced_memory()[0] - heap0) / 1024 / RSS_PIPELINES
        tracemalloc.stop()
        for _ in range(reps):
            gc.collect()
            rss0, tasks0 = _rss_kb(), len(asyncio.all_tasks())
            await start(RSS_PIPELINES)
            await asyncio.sleep(0.2)
            gc.collect()
            kb.append((_rss_kb() - rss0) / RSS_PIPELINES)
            tasks.append((len(asyncio.all_tasks()) - tasks0) / RSS_PIPELINES)
    finally:
        await asyncio.gather(*(s.stop() for s in live))
    return {
        "rss_kb_per_pipeline": statistics.median(kb),
        "tasks_per_pipeline": statistics.median(tasks),
        "heap_kb_per_pipeline": heap_kb,
    }


async def run_framecast(*, reps: int, quick: bool) -> dict[str, float]:
    """Measure framecast's overhead; same keys and batch sizes as ``run_pipecat``."""
    hop_frames = 500 if quick else 2000
    idle_trials = 5 if quick else 20
    backlog_trials = 1 if quick else 3
    results: dict[str, Any] = {}
    async with asyncio.timeout(RUN_TIMEOUT_S):
        results["hop_us_audio_n10"] = await _hop_us(
            lambda turn: AudioIn(pcm=IN_CHUNK, turn=turn), frames=hop_frames, reps=reps
        )
        results["hop_us_text_n10"] = await _hop_us(
            lambda turn: TextIn(text="hello", turn=turn), frames=hop_frames, reps=reps
        )
        for n in (1, 10, 50):
            full, smoke = FPS_FRAMES[n]
            results[f"fps_audio_n{n}"] = await _fps_audio(
                n, frames=smoke if quick else full, reps=reps
            )
        results["interrupt_us_idle_n50"] = await _interrupt_idle_us(trials=idle_trials, reps=reps)
        backlog_us, backlog_stale = await _interrupt_backlog(trials=backlog_trials, reps=reps)
        results["interrupt_us_backlog_n50"] = backlog_us
        results["stale_frames_backlog"] = backlog_stale
        results["stale_frames_adversarial"] = await _stale_adversarial(reps=reps)
    results.update(await _rss_probe(reps))
    return results


if __name__ == "__main__":
    reps, quick = int(sys.argv[1]), sys.argv[2] == "quick"
    print(json.dumps(asyncio.run(run_framecast(reps=reps, quick=quick))))
