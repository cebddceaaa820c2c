"""Pipecat 1.14 side of framecast's overhead benchmark.

Every workload here measures what Pipecat itself costs, with a harness that framecast's side
mirrors shape for shape:

* **source**: a direct-mode ``FrameProcessor`` (no queue, no task). "Queueing a frame at the
  source" is ``await source.queue_frame(frame)``, which pushes it straight into the first
  processor's input queue, the way a transport's input hands a frame to the pipeline.
* **processors**: plain pass-through ``FrameProcessor`` subclasses (``super().process_frame``,
  then ``push_frame``), each with Pipecat's own input and process queues and tasks.
* **sink**: a normal queued ``FrameProcessor`` at the end. It stamps every audio and text frame
  with ``time.perf_counter_ns()`` on entry to ``process_frame`` (before ``super()``), keeps it
  and resolves the harness's waiter. So a pipeline of N processors has N + 1 hops, and each
  hop is one hand-over through a Pipecat queue.
* **waiting**: on bare futures from ``loop.create_future()``, resolved by the sink or the
  processor being watched. ``asyncio.wait_for`` and ``Event.wait`` would add loop iterations
  between the event and the harness, and hide frames that arrive in them.
* **frames**: built before the clock starts. A fresh frame object goes into every push, because
  Pipecat's observers treat a frame id they have seen before differently.
* **interruption**: ``source.interrupt()`` calls ``broadcast_interruption()`` on the source.
  That is how Pipecat 1.14 interrupts: the user-turn processor
  (``turns/user_turn_processor.py``) and the LLM user aggregator call it. It resets the
  caller's queue and pushes an ``InterruptionFrame`` (a ``SystemFrame``) downstream and
  upstream. Each processor that sees it cancels and re-creates its process task, which
  drops the data frames in its process queue. Frames still in a processor's input queue
  survive, because the ``InterruptionFrame`` jumps ahead of them there.
* **tasks**: each pipeline runs as a ``PipelineWorker`` on its own ``WorkerRunner``, as one
  session of a Pipecat server does (``handle_sigint=False``). It is cancelled with
  ``runner.cancel()``.

Configs:

* ``"default"``: ``PipelineWorker(pipeline)`` with every default, i.e. what
  ``PipelineTask(pipeline)`` (its deprecated alias) builds. That means RTVI on (an
  ``RTVIProcessor`` in front and an ``RTVIObserver``), turn tracking on
  (``TurnTrackingObserver``), the idle-timeout observer and its monitor task (300 s),
  the dangling-task check at the end, and Pipecat's loguru output at DEBUG on stderr.
* ``"lean"``: ``PipelineWorker(pipeline, enable_rtvi=False, enable_turn_tracking=False,
  idle_timeout_secs=None, cancel_on_idle_timeout=False, check_dangling_tasks=False,
  observers=[], params=PipelineParams(enable_metrics=False, enable_usage_metrics=False,
  enable_heartbeats=False, send_initial_empty_metrics=False))``, with
  ``logger.disable("pipecat")`` for the length of the run. It adds no observer, no RTVI
  processor and no idle task. Tracing is off in both configs, which is Pipecat's default.
  What is left is Pipecat's own per-frame cost. That includes building a ``FramePushed``
  for the worker observer on every push and the f-string argument of
  ``logger.trace`` in ``push_frame``, both of which run even when nothing listens.

``rss_kb_per_pipeline`` and ``tasks_per_pipeline`` come from a fresh interpreter (this file
run with ``--rss-probe``). In the parent process, memory freed by the earlier workloads
would be reused and the delta would come out too small.

Run ``.venv/bin/python benchmarks/peer_pipecat.py`` for both configs with ``reps=3``,
``quick=True``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

__all__ = ["run_pipecat"]

CONFIGS = ("default", "lean")

IN_RATE = 16_000
IN_CHUNK = bytes(IN_RATE // 50 * 2)  # 20 ms of 16 kHz mono PCM16: 640 bytes
OUT_RATE = 24_000
OUT_CHUNK = bytes(OUT_RATE // 50 * 2)  # 20 ms of 24 kHz mono PCM16: 960 bytes

HOP_CHAIN = 10
FPS_CHAINS = (1, 10, 50)
# Frames per throughput rep, (full, quick). At N=50 a Pipecat rep of 20,000 frames takes
# 10-20 s (1-2k fps), and a config must finish in under a minute. The rate is flat from a few
# thousand frames on, so N=50 gets 5,000.
FPS_FRAMES = {1: (20_000, 4_000), 10: (20_000, 4_000), 50: (5_000, 2_000)}
FPS_WARMUP_FRAMES = 1_000
INTERRUPT_CHAIN = 50
BACKLOG_FRAMES = 200
SLOW_FRAME_S = 0.001
ADVERSARIAL_FRAMES = 200
ADVERSARIAL_CHAIN = 10
RSS_PIPELINES = 100
RSS_CHAIN = 7
# One wall-clock bound on a whole run. A frame lost by a bug would otherwise hang the benchmark.
RUN_TIMEOUT_S = 300.0

Sample = Callable[[], Frame]


def _audio_in() -> Frame:
    return InputAudioRawFrame(audio=IN_CHUNK, sample_rate=IN_RATE, num_channels=1)


def _text() -> Frame:
    return TextFrame(text="hello there")


class _Source(FrameProcessor):
    """Direct-mode entry point: ``queue_frame`` pushes straight into the first processor."""

    def __init__(self) -> None:
        super().__init__(name="bench-source", enable_direct_mode=True)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)

    async def interrupt(self) -> None:
        """Interrupt the pipeline as Pipecat 1.14's user-turn processor does."""
        await self.broadcast_interruption()  # type: ignore[no-untyped-call]


class _PassThrough(FrameProcessor):
    """The smallest useful Pipecat processor: let the base class see the frame, pass it on."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class _Watched(FrameProcessor):
    """Last processor of a chain. Reports when it sees an interruption, and can be slow.

    ``slow`` makes it await ``asyncio.sleep(0.001)`` before passing on each ``TextFrame``,
    as a stage doing real async work per frame would.
    """

    def __init__(self, *, slow: bool = False) -> None:
        super().__init__(name="bench-watched")
        self._slow = slow
        self._interrupted: asyncio.Future[int] | None = None

    def expect_interruption(self) -> asyncio.Future[int]:
        """Return a future resolved with the ``perf_counter_ns`` of the next interruption."""
        self._interrupted = asyncio.get_running_loop().create_future()
        return self._interrupted

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterruptionFrame):
            waiter, self._interrupted = self._interrupted, None
            if waiter is not None and not waiter.done():
                waiter.set_result(time.perf_counter_ns())
        await super().process_frame(frame, direction)
        if self._slow and isinstance(frame, TextFrame):
            await asyncio.sleep(SLOW_FRAME_S)
        await self.push_frame(frame, direction)


class _Speaker(FrameProcessor):
    """Adversarial TTS stand-in: on its trigger, pushes 200 output chunks without yielding.

    Every chunk goes out through ``await self.push_frame(...)``, and nothing in the loop
    checks for an interruption. The trigger frame itself is consumed; other frames pass on.
    """

    def __init__(self) -> None:
        super().__init__(name="bench-speaker")
        self._trigger: Frame | None = None
        self._triggered: asyncio.Future[int] | None = None

    def arm(self, trigger: Frame) -> asyncio.Future[int]:
        """Return a future resolved with the ``perf_counter_ns`` at which ``trigger`` arrives."""
        self._trigger = trigger
        self._triggered = asyncio.get_running_loop().create_future()
        return self._triggered

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if frame is not self._trigger:
            await self.push_frame(frame, direction)
            return
        if self._triggered is not None and not self._triggered.done():
            self._triggered.set_result(time.perf_counter_ns())
        for _ in range(ADVERSARIAL_FRAMES):
            chunk = OutputAudioRawFrame(audio=OUT_CHUNK, sample_rate=OUT_RATE, num_channels=1)
            await self.push_frame(chunk)


_RECORDED = (InputAudioRawFrame, TextFrame, OutputAudioRawFrame)


class _Sink(FrameProcessor):
    """Queued end point. Records ``(perf_counter_ns, frame)`` for each audio or text frame.

    Recorded frames stop here, as they would at an output transport. Everything else (start,
    cancel, interruption) is passed on, so the worker still sees its lifecycle frames.
    """

    def __init__(self) -> None:
        super().__init__(name="bench-sink")
        self.arrivals: list[tuple[int, Frame]] = []
        self._target_frame: Frame | None = None
        self._target_count = 0
        self._waiter: asyncio.Future[int] | None = None

    def reset(self) -> None:
        """Forget the recorded arrivals."""
        self.arrivals = []

    def expect_frame(self, frame: Frame) -> asyncio.Future[int]:
        """Return a future resolved with the arrival time of ``frame``."""
        self._target_frame, self._target_count = frame, 0
        return self._arm()

    def expect_count(self, count: int) -> asyncio.Future[int]:
        """Return a future resolved when ``count`` frames have arrived since ``reset()``."""
        self._target_frame, self._target_count = None, count
        return self._arm()

    def _arm(self) -> asyncio.Future[int]:
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, _RECORDED):
            now = time.perf_counter_ns()
            self.arrivals.append((now, frame))
            waiter = self._waiter
            if waiter is not None and (
                frame is self._target_frame or len(self.arrivals) == self._target_count
            ):
                self._waiter = None
                waiter.set_result(now)
            await super().process_frame(frame, direction)
            return
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


def _worker(pipeline: Pipeline, config: str) -> PipelineWorker:
    if config == "default":
        return PipelineWorker(pipeline)
    return PipelineWorker(
        pipeline,
        enable_rtvi=False,
        enable_turn_tracking=False,
        idle_timeout_secs=None,
        cancel_on_idle_timeout=False,
        check_dangling_tasks=False,
        observers=[],
        params=PipelineParams(
            enable_metrics=False,
            enable_usage_metrics=False,
            enable_heartbeats=False,
            send_initial_empty_metrics=False,
        ),
    )


class _Session:
    """One pipeline run as a Pipecat server runs a session: a worker on its own runner."""

    def __init__(self, processors: Sequence[FrameProcessor], config: str) -> None:
        self.worker = _worker(Pipeline(list(processors)), config)
        self.runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=config == "default")
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

        @self.worker.event_handler("on_pipeline_started")  # type: ignore[untyped-decorator]
        async def _on_started(_worker: PipelineWorker, _frame: Frame) -> None:
            if not self.started.done():
                self.started.set_result(None)

    async def start(self) -> None:
        """Start the runner in a task; returns once the StartFrame has reached the end."""
        await self.runner.add_workers(self.worker)
        self._task = asyncio.create_task(self.runner.run(), name=f"session-{self.worker.name}")
        await self.started

    async def aclose(self) -> None:
        """Cancel the runner and wait for its task."""
        if self._task is None:
            return
        task, self._task = self._task, None
        await self.runner.cancel(reason="benchmark done")
        await task


@asynccontextmanager
async def _running(processors: Sequence[FrameProcessor], config: str) -> AsyncIterator[None]:
    session = _Session(processors, config)
    try:
        await session.start()
        yield
    finally:
        await session.aclose()


def _chain(n: int) -> list[FrameProcessor]:
    return [_PassThrough(name=f"bench-pass-{i}") for i in range(n)]


async def _hop_us(config: str, sample: Sample, *, frames: int, reps: int) -> float:
    """Per-hop latency, one frame in flight, N=10 pass-through processors.

    Pipeline: source -> 10 pass-through -> sink, so 11 hops. For each frame (built
    beforehand): t0 = ``perf_counter_ns()``, ``await source.queue_frame(frame)``, then await
    the sink's future for that frame; latency = (arrival - t0) / 11. The next frame goes in
    only after the previous one has arrived. One rep is the median over ``frames`` frames.
    The result is the median of ``reps`` reps, after one warm-up rep of ``frames // 4``.
    """
    source, sink = _Source(), _Sink()
    medians: list[float] = []
    async with _running([source, *_chain(HOP_CHAIN), sink], config):
        for rep in range(reps + 1):
            batch = [sample() for _ in range(frames // 4 if rep == 0 else frames)]
            latencies: list[float] = []
            for frame in batch:
                arrived = sink.expect_frame(frame)
                t0 = time.perf_counter_ns()
                await source.queue_frame(frame)
                latencies.append((await arrived - t0) / 1000 / (HOP_CHAIN + 1))
            sink.reset()
            if rep:
                medians.append(statistics.median(latencies))
    return statistics.median(medians)


async def _fps_audio(config: str, n: int, *, frames: int, reps: int) -> float:
    """Throughput of 20 ms input-audio frames through ``n`` pass-through processors.

    Pipeline: source -> n pass-through -> sink. The frames are built first. Then t0 =
    ``perf_counter_ns()``, and each frame goes in with ``await source.queue_frame(frame)``
    followed by ``await asyncio.sleep(0)``. The clock stops when the sink has the last one.
    fps = frames / elapsed. Median of ``reps`` reps, after one warm-up rep of 1,000 frames.
    ``frames`` per rep is in ``FPS_FRAMES``: 20,000 at N=1 and N=10, and 5,000 at N=50.
    """
    source, sink = _Source(), _Sink()
    rates: list[float] = []
    async with _running([source, *_chain(n), sink], config):
        for rep in range(reps + 1):
            batch = [_audio_in() for _ in range(FPS_WARMUP_FRAMES if rep == 0 else frames)]
            sink.reset()
            done = sink.expect_count(len(batch))
            t0 = time.perf_counter_ns()
            for frame in batch:
                await source.queue_frame(frame)
                await asyncio.sleep(0)
            elapsed_s = (await done - t0) / 1e9
            sink.reset()
            if rep:
                rates.append(len(batch) / elapsed_s)
    return statistics.median(rates)


async def _interrupt_idle_us(config: str, *, trials: int, reps: int) -> float:
    """Interruption propagation through 50 idle processors.

    Pipeline: source -> 49 pass-through -> watched -> sink, nothing in flight. t0 =
    ``perf_counter_ns()``, then ``await source.interrupt()``. The time is taken
    when the 50th processor's ``process_frame`` receives the ``InterruptionFrame``. Before the
    next trial a marker text frame is sent through and awaited at the sink, so the pipeline
    is settled. One rep is the median of ``trials`` trials. The result is the median of
    ``reps`` reps, after a warm-up rep.
    """
    source, watched, sink = _Source(), _Watched(), _Sink()
    medians: list[float] = []
    async with _running([source, *_chain(INTERRUPT_CHAIN - 1), watched, sink], config):
        for rep in range(reps + 1):
            times: list[float] = []
            for _ in range(trials):
                seen = watched.expect_interruption()
                t0 = time.perf_counter_ns()
                await source.interrupt()
                times.append((await seen - t0) / 1000)
                marker = _text()
                settled = sink.expect_frame(marker)
                await source.queue_frame(marker)
                await settled
                sink.reset()
            if rep:
                medians.append(statistics.median(times))
    return statistics.median(medians)


async def _interrupt_backlog(config: str, *, trials: int, reps: int) -> tuple[float, float]:
    """Interruption with an old turn still in flight ahead of a slow last processor.

    Pipeline: source -> 49 pass-through -> watched (slow: ``await asyncio.sleep(0.001)`` per
    TextFrame) -> sink. One trial:

    1. 200 old-turn TextFrames go in at the source, each ``await source.queue_frame(frame)``
       followed by ``await asyncio.sleep(0)``, as in the throughput workload (a producer
       streaming its reply). The slow processor falls behind, so the old turn piles up in
       its queue (in Pipecat about 25 have reached the sink and 175 are queued when the
       last one is in).
    2. If no old frame has reached the sink yet, wait until one has. The bot has started to
       "speak". (In Pipecat this is already true at this point.)
    3. t0 = ``perf_counter_ns()``; ``await source.interrupt()``. The latency ends
       when the slow 50th processor's ``process_frame`` receives the ``InterruptionFrame``.
    4. A new-turn marker TextFrame is sent and awaited at the sink. Every old frame still
       alive is ahead of it, because each Pipecat queue is FIFO within a priority tier.
       Stale = old frames that reached the sink at or after t0.

    One rep gives the medians of ``trials`` trials. The results are the medians of ``reps``
    reps, after a warm-up rep.

    Returns:
        (latency in µs, stale frame count)
    """
    source, watched, sink = _Source(), _Watched(slow=True), _Sink()
    latencies: list[float] = []
    stale_counts: list[float] = []
    async with _running([source, *_chain(INTERRUPT_CHAIN - 1), watched, sink], config):
        for rep in range(reps + 1):
            times: list[float] = []
            stale: list[int] = []
            for _ in range(trials):
                old = [_text() for _ in range(BACKLOG_FRAMES)]
                marker = _text()
                sink.reset()
                speaking = sink.expect_count(1)
                for frame in old:
                    await source.queue_frame(frame)
                    await asyncio.sleep(0)
                await speaking
                seen = watched.expect_interruption()
                t0 = time.perf_counter_ns()
                await source.interrupt()
                times.append((await seen - t0) / 1000)
                settled = sink.expect_frame(marker)
                await source.queue_frame(marker)
                await settled
                stale.append(sum(1 for at, f in sink.arrivals if at >= t0 and f is not marker))
                sink.reset()
            if rep:
                latencies.append(statistics.median(times))
                stale_counts.append(statistics.median(stale))
    return statistics.median(latencies), statistics.median(stale_counts)


async def _stale_adversarial(config: str, *, reps: int) -> float:
    """Output chunks that reach the sink after an interruption, from a speaker that never yields.

    Pipeline: source -> speaker -> 10 pass-through -> sink. One trial: a trigger TextFrame goes
    in at the source, and the harness awaits the speaker's future for it. Pipecat's speaker
    resolves it and then pushes its 200 ``OutputAudioRawFrame`` chunks without yielding, so
    the harness wakes when the push loop has ended. Right then, t0 = ``perf_counter_ns()``
    and ``await source.interrupt()``. A new-turn marker is sent and awaited at
    the sink. Stale = output chunks that reached the sink at or after t0. Median of ``reps``
    trials, after a warm-up trial.
    """
    source, speaker, sink = _Source(), _Speaker(), _Sink()
    counts: list[int] = []
    async with _running([source, speaker, *_chain(ADVERSARIAL_CHAIN), sink], config):
        for rep in range(reps + 1):
            trigger, marker = _text(), _text()
            sink.reset()
            triggered = speaker.arm(trigger)
            await source.queue_frame(trigger)
            await triggered
            t0 = time.perf_counter_ns()
            await source.interrupt()
            settled = sink.expect_frame(marker)
            await source.queue_frame(marker)
            await settled
            stale = sum(
                1 for at, f in sink.arrivals if at >= t0 and isinstance(f, OutputAudioRawFrame)
            )
            sink.reset()
            if rep:
                counts.append(stale)
    return statistics.median(counts)


def _rss_kb() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1024


async def _rss_probe(config: str, reps: int) -> dict[str, float]:
    """Memory and tasks per running pipeline. Runs in a fresh interpreter.

    Two warm-up pipelines are started first, so lazy imports and first-use caches are
    excluded. Each rep then does ``gc.collect()`` and reads RSS from ``/proc/self/statm`` and
    ``len(asyncio.all_tasks())``. It builds 100 sessions of 7 pass-through processors, starts
    them all at once and waits until every StartFrame has reached its pipeline's end. It
    waits 0.2 s more, so one-shot event-handler tasks finish, and reads both values again.
    Delta / 100. Pipelines from earlier reps stay up, so each rep measures fresh growth and
    not reuse of freed memory. Median of ``reps`` reps.
    """
    live: list[_Session] = []

    async def start(count: int) -> None:
        sessions = [_Session(_chain(RSS_CHAIN), config) for _ in range(count)]
        live.extend(sessions)
        await asyncio.gather(*(s.start() for s in sessions))

    kb: list[float] = []
    tasks: list[float] = []
    try:
        await start(2)
        for _ in range(reps):
            gc.collect()
            rss0, tasks0 = _rss_kb(), len(asyncio.all_tasks())
            await start(RSS_PIPELINES)
            await asyncio.sleep(0.2)
            gc.collect()
            kb.append((_rss_kb() - rss0) / RSS_PIPELINES)
            tasks.append((len(asyncio.all_tasks()) - tasks0) / RSS_PIPELINES)
    finally:
        await asyncio.gather(*(s.aclose() for s in live))
    return {
        "rss_kb_per_pipeline": statistics.median(kb),
        "tasks_per_pipeline": statistics.median(tasks),
    }


def _rss_in_subprocess(config: str, reps: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--rss-probe", config, str(reps)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rss probe failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def run_pipecat(config: str, *, reps: int, quick: bool) -> dict[str, float]:
    """Measure Pipecat 1.14's framework overhead in one config.

    Args:
        config: ``"default"`` or ``"lean"``. The module docstring says what each one sets.
        reps: measured repetitions per workload, each after a warm-up. Results are medians.
        quick: smaller batches for smoke runs: 500 instead of 2,000 frames per latency rep,
            the smaller ``FPS_FRAMES`` counts, and fewer interruption trials.

    Returns:
        ``hop_us_audio_n10``, ``hop_us_text_n10``, ``fps_audio_n1``, ``fps_audio_n10``,
        ``fps_audio_n50``, ``interrupt_us_idle_n50``, ``interrupt_us_backlog_n50``,
        ``stale_frames_backlog``, ``stale_frames_adversarial``, ``rss_kb_per_pipeline``,
        ``tasks_per_pipeline``.

    Raises:
        ValueError: unknown config or ``reps < 1``.
        TimeoutError: a run took longer than ``RUN_TIMEOUT_S``. A lost frame would cause this.
        RuntimeError: the RSS probe subprocess failed.
    """
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {CONFIGS}, got {config!r}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    hop_frames = 500 if quick else 2000
    idle_trials = 5 if quick else 20
    backlog_trials = 1 if quick else 3

    if config == "lean":
        logger.disable("pipecat")
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            results: dict[str, float] = {
                "hop_us_audio_n10": await _hop_us(config, _audio_in, frames=hop_frames, reps=reps),
                "hop_us_text_n10": await _hop_us(config, _text, frames=hop_frames, reps=reps),
            }
            for n in FPS_CHAINS:
                full, smoke = FPS_FRAMES[n]
                results[f"fps_audio_n{n}"] = await _fps_audio(
                    config, n, frames=smoke if quick else full, reps=reps
                )
            results["interrupt_us_idle_n50"] = await _interrupt_idle_us(
                config, trials=idle_trials, reps=reps
            )
            backlog_us, backlog_stale = await _interrupt_backlog(
                config, trials=backlog_trials, reps=reps
            )
            results["interrupt_us_backlog_n50"] = backlog_us
            results["stale_frames_backlog"] = backlog_stale
            results["stale_frames_adversarial"] = await _stale_adversarial(config, reps=reps)
    finally:
        if config == "lean":
            logger.enable("pipecat")
    probe = await asyncio.to_thread(_rss_in_subprocess, config, reps)
    results.update(probe)
    return results


async def _main() -> None:
    for config in CONFIGS:
        started = time.perf_counter()
        results = await run_pipecat(config, reps=3, quick=True)
        elapsed = time.perf_counter() - started
        print(f"pipecat {config} ({elapsed:.1f} s): {json.dumps(results, indent=2)}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--rss-probe":
        if sys.argv[2] == "lean":
            logger.disable("pipecat")
        print(json.dumps(asyncio.run(_rss_probe(sys.argv[2], int(sys.argv[3])))))
    else:
        asyncio.run(_main())
