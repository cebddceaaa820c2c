"""Core library behaviour: ordering, composition, errors, lifecycle, turns, time."""

from __future__ import annotations

import asyncio

import pytest

from framecast import (
    AudioIn,
    AudioOut,
    Boundary,
    ControlFrame,
    Direction,
    EmotionTag,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMText,
    Parallel,
    Pipeline,
    PipelineError,
    Processor,
    Session,
    StartFrame,
    TextIn,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from framecast.testing import run_processors

PCM = bytes(640)  # 20 ms of 16 kHz PCM16


class Recorder(Processor):
    """Pass-through that records what it saw."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self.seen: list[Frame] = []

    async def process(self, frame: Frame, direction: Direction) -> None:
        self.seen.append(frame)
        await self.push(frame, direction)


class SpeechMarker(Processor):
    """Emits a control frame before every 3rd audio frame, like a gate would."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, AudioIn):
            self.count += 1
            if self.count % 3 == 0:
                await self.push(UserStartedSpeaking(turn=frame.turn))
        await self.push(frame, direction)


def audio(i: int, turn: int = 0) -> AudioIn:
    return AudioIn(pcm=i.to_bytes(2, "little") * 320, turn=turn)


# --- ordering and composition --------------------------------------------------------


async def test_audio_keeps_its_place_among_control_frames() -> None:
    frames = [audio(i) for i in range(9)]
    out = await run_processors([SpeechMarker(), Recorder()], frames)
    kinds = ["C" if isinstance(f, ControlFrame) else "A" for f in out.data()]
    assert kinds == ["A", "A", "C", "A", "A", "A", "C", "A", "A", "A", "C", "A"]
    assert [f.pcm for f in out.of(AudioIn)] == [f.pcm for f in frames]


async def test_nested_pipelines_visit_every_processor_in_order() -> None:
    a, b, c, d = Recorder("a"), Recorder("b"), Recorder("c"), Recorder("d")
    inner = Pipeline([b, Pipeline([c])])
    session = Session([a, inner, d])
    assert [p.name for p in session.processors] == [
        "session.head",
        "a",
        "b",
        "c",
        "d",
        "session.tail",
    ]
    async with session:
        await session.push(TextIn(text="x"))
    for r in (a, b, c, d):
        assert [type(f) for f in r.seen] == [StartFrame, TextIn, EndFrame]


async def test_upstream_frames_travel_back_through_every_processor() -> None:
    a, b = Recorder("a"), Recorder("b")
    out = await run_processors([a, b], [])
    assert out.up == []
    session_up: list[Frame] = []

    async def on_up(frame: Frame) -> None:
        session_up.append(frame)

    a2, b2 = Recorder("a"), Recorder("b")
    async with Session([a2, b2], on_upstream=on_up) as session:
        await session.push(TextIn(text="back"), Direction.UP)
    assert [type(f) for f in session_up] == [TextIn]
    assert any(isinstance(f, TextIn) for f in a2.seen) and any(
        isinstance(f, TextIn) for f in b2.seen
    )


class Tagger(Processor):
    """A side analysis: tags every text it sees, passes everything on."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, TextIn):
            await self.push(EmotionTag(label="happy", score=0.9, turn=frame.turn))


async def test_parallel_fans_out_and_merges_each_frame_once() -> None:
    left, right = Recorder("left"), Recorder("right")
    frames = [TextIn(text=str(i)) for i in range(5)]
    out = await run_processors([Parallel([left], [right, Tagger()])], frames)
    texts = [f.text for f in out.of(TextIn)]
    assert texts == ["0", "1", "2", "3", "4"]  # once each, in order
    assert len(out.of(EmotionTag)) == 5
    assert len(out.of(StartFrame)) == 1 and len(out.of(EndFrame)) == 1
    assert len([f for f in left.seen if isinstance(f, TextIn)]) == 5
    assert len([f for f in right.seen if isinstance(f, TextIn)]) == 5


async def test_parallel_with_an_empty_branch_is_a_tee() -> None:
    out = await run_processors([Parallel([], [Tagger()])], [TextIn(text="hi")])
    assert [type(f).__name__ for f in out.data()] == ["TextIn", "EmotionTag"]


def test_a_processor_cannot_be_linked_twice() -> None:
    p = Processor()
    Pipeline([p, Processor()])
    with pytest.raises(PipelineError):
        Pipeline([p, Processor()])


# --- backpressure ------------------------------------------------------------------------


class Slow(Processor):
    """Takes ``delay`` seconds (session clock) per data frame."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def process(self, frame: Frame, direction: Direction) -> None:
        if not isinstance(frame, StartFrame | EndFrame):
            await self.clock.sleep(self.delay)
        await self.push(frame, direction)


@pytest.mark.virtual_time
async def test_boundary_applies_backpressure_within_its_bound() -> None:
    boundary = Boundary(maxsize=3)
    times: list[float] = []

    async def on_output(frame: Frame) -> None:
        if isinstance(frame, TextIn):
            times.append(loop.time())

    loop = asyncio.get_running_loop()
    async with Session([boundary, Slow(0.1)], on_output=on_output) as session:
        push_done: list[float] = []
        for i in range(10):
            await session.push(TextIn(text=str(i)))
            push_done.append(loop.time())
            assert len(boundary.channel) <= 3
    assert boundary.channel.peak == 3
    # The first pushes return at once; later ones wait for the slow consumer.
    assert push_done[2] == 0.0
    assert push_done[-1] == pytest.approx(0.6)
    assert times == pytest.approx([0.1 * (i + 1) for i in range(10)])


# --- errors ---------------------------------------------------------------------------------


class Fails(Processor):
    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextIn) and frame.text == "boom":
            raise ValueError("cannot handle boom")
        await self.push(frame, direction)


async def test_a_failing_processor_reports_upstream_and_the_pipeline_goes_on() -> None:
    before = Recorder("before")
    out = await run_processors(
        [before, Fails(name="fragile"), Recorder("after")],
        [TextIn(text="ok1"), TextIn(text="boom"), TextIn(text="ok2")],
    )
    assert [f.text for f in out.of(TextIn)] == ["ok1", "ok2"]
    errors = out.of(ErrorFrame, up=True)
    assert len(errors) == 1
    assert errors[0].processor == "fragile"
    assert errors[0].code == "internal"
    assert "cannot handle boom" in errors[0].message
    assert any(isinstance(f, ErrorFrame) for f in before.seen)  # it travelled up through 'before'


class FailsInBackground(Processor):
    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextIn):
            self.create_task(self._work(frame), turn=frame.turn)
        await self.push(frame, direction)

    async def _work(self, frame: TextIn) -> None:
        await asyncio.sleep(0)
        raise RuntimeError(f"background failure on {frame.text}")


async def test_background_task_errors_become_error_frames() -> None:
    out = await run_processors([FailsInBackground(name="bg")], [TextIn(text="a"), 0.0])
    errors = out.of(ErrorFrame, up=True)
    assert [e.processor for e in errors] == ["bg"]
    assert "background failure on a" in errors[0].message


# --- lifecycle -------------------------------------------------------------------------------


class Spawner(Processor):
    """Owns a session-long ticker and a task per text frame that never ends by itself."""

    async def on_start(self) -> None:
        self.create_task(self._tick(), turn=None)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(3600)

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextIn):
            self.create_task(asyncio.Event().wait(), turn=frame.turn)
        await self.push(frame, direction)


@pytest.mark.parametrize("how", ["stop", "cancel"])
async def test_no_task_outlives_the_session(how: str) -> None:
    before = asyncio.all_tasks()
    session = Session([Spawner(), Boundary(4), Parallel([Spawner()], [Recorder()]), Spawner()])
    await session.start()
    for i in range(3):
        await session.push(TextIn(text=str(i)))
    while len(session.processors[2].channel):  # the boundary hands frames on in its own task
        await asyncio.sleep(0)
    during = asyncio.all_tasks() - before
    assert len(during) >= 3 + 1 + 9  # tickers, boundary pump, per-frame tasks
    await (session.stop() if how == "stop" else session.cancel())
    assert asyncio.all_tasks() - before == set()
    assert all(t.done() for t in during)


async def test_session_cannot_start_twice() -> None:
    session = Session([Processor()])
    await session.start()
    with pytest.raises(PipelineError):
        await session.start()
    await session.stop()


# --- interruption ----------------------------------------------------------------------------


class TurnWorker(Processor):
    """Starts a long reply task per text frame and records what happened to it."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled: list[int] = []
        self.resets: list[int] = []

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextIn):
            self.create_task(self._reply(frame.turn), turn=frame.turn)
        await self.push(frame, direction)

    async def _reply(self, turn: int) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(turn)
            raise

    def on_interruption(self, turn: int) -> None:
        self.resets.append(turn)


async def test_interrupt_cancels_and_joins_older_turn_tasks_only() -> None:
    worker = TurnWorker()
    async with Session([worker]) as session:
        await session.push(TextIn(text="first", turn=0))
        await asyncio.sleep(0)
        (old_task,) = list(worker._tasks)
        new_turn = await session.interrupt()
        assert new_turn == 1 and session.turn == 1
        assert old_task.done() and old_task.cancelled()  # joined, not orphaned
        assert worker.cancelled == [0] and worker.resets == [1]
        await session.push(TextIn(text="second", turn=1))
        await asyncio.sleep(0)
        assert len(worker._tasks) == 1  # the new turn's task survives
    assert worker.cancelled == [0, 1]  # and is cancelled at stop


async def test_stale_frames_are_dropped_at_the_next_hop() -> None:
    after = Recorder("after")
    out = await run_processors(
        [Processor(), after],
        [
            LLMText(text="old", turn=0),
            InterruptionFrame(),
            LLMText(text="late", turn=0),
            LLMText(text="new", turn=1),
        ],
    )
    assert [f.text for f in out.of(LLMText)] == ["old", "new"]
    assert [f.text for f in after.seen if isinstance(f, LLMText)] == ["old", "new"]
    assert [f.turn for f in out.of(InterruptionFrame)] == [1]


class Sink(Processor):
    """Like an output transport: every frame costs a real await (a socket write)."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: list[tuple[int, int]] = []  # (frame turn, session turn at arrival)

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, AudioOut):
            self.audio.append((frame.turn, self.session.turn))  # "written" on arrival
        await asyncio.sleep(0)  # the drain
        await self.push(frame, direction)


class Babbler(Processor):
    """Adversary: on a trigger, pushes 200 audio frames of its turn in a loop, never checking."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextIn):
            for _ in range(200):
                await self.push(AudioOut(pcm=PCM, turn=frame.turn))
        await self.push(frame, direction)


async def test_no_stale_audio_reaches_the_sink_from_a_processor_that_keeps_pushing() -> None:
    sink = Sink()
    session = Session([Babbler(), *[Processor() for _ in range(5)], sink])
    await session.start()
    babble = asyncio.ensure_future(session.push(TextIn(text="go", turn=0)))
    while len(sink.audio) < 10:  # let the adversary get going
        await asyncio.sleep(0)
    await session.interrupt()
    await babble
    await session.stop()
    assert 10 <= len(sink.audio) < 200
    assert all(frame_turn == 0 and at_turn == 0 for frame_turn, at_turn in sink.audio)


@pytest.mark.virtual_time
async def test_interruption_empties_queued_backlog_of_the_old_turn() -> None:
    boundary = Boundary(maxsize=256)
    sink = Sink()
    slow = Slow(0.001)
    session = Session([Processor(), boundary, slow, sink])
    await session.start()
    for _ in range(200):
        await session.push(AudioOut(pcm=PCM, turn=0))
    assert len(boundary.channel) >= 198
    await asyncio.sleep(0.0105)  # ten have gone through the slow stage
    await session.interrupt()
    assert len(boundary.channel) == 0
    await session.push(AudioOut(pcm=PCM, turn=1))
    await session.stop()
    stale = [t for t, at in sink.audio if t < at]
    assert stale == []
    assert sink.audio[-1] == (1, 1)
    assert len(sink.audio) < 20


# --- concurrency rule -------------------------------------------------------------------------


class Reentrancy(Processor):
    """Stateful processor that notices if two tasks are inside ``process`` at once."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.overlaps = 0
        self.count = 0

    async def process(self, frame: Frame, direction: Direction) -> None:
        self.inside += 1
        if self.inside > 1:
            self.overlaps += 1
        await asyncio.sleep(0)  # yield mid-handler, as real processors do
        self.count += 1
        await self.push(frame, direction)
        self.inside -= 1


class Transcriber(Processor):
    """Concurrent stage: for every 4th audio frame, a background task pushes a transcript."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, AudioIn):
            self.n += 1
            if self.n % 4 == 0:
                self.create_task(self._decode(frame.turn), turn=frame.turn)
        await self.push(frame, direction)

    async def _decode(self, turn: int) -> None:
        await asyncio.sleep(0)
        await self.push(UserStoppedSpeaking(turn=turn))


async def test_a_stateful_processor_after_a_concurrent_stage_sees_one_writer_at_a_time() -> None:
    guard = Reentrancy()
    async with Session([Transcriber(), Processor(), guard]) as session:
        for i in range(200):
            await session.push(audio(i))
        for _ in range(10):
            await asyncio.sleep(0)
    assert guard.count == 200 + 50 + 2  # audio + transcripts + start/end
    assert guard.overlaps == 0


async def test_the_reentrancy_probe_does_detect_two_writers() -> None:
    # Without the serialization rule (two tasks pushing into the same processor
    # directly), the probe above does catch the overlap: it is not a test that
    # cannot fail.
    guard = Reentrancy()
    async with Session([guard]) as session:
        await asyncio.gather(*(session.push(audio(i)) for i in range(5)))
    assert guard.overlaps > 0


# --- time --------------------------------------------------------------------------------------


class TurnTimeout(Processor):
    """Ends the user's turn if they stay silent ``timeout`` seconds (clock-driven)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, UserStoppedSpeaking):
            self.create_task(self._expire(frame.turn), turn=frame.turn)

    async def _expire(self, turn: int) -> None:
        await self.clock.sleep(self.timeout)
        await self.push(TextIn(text=f"timeout at {self.clock.now():.1f}", turn=turn))


@pytest.mark.virtual_time
async def test_virtual_clock_fires_timers_without_sleeping() -> None:
    loop = asyncio.get_running_loop()
    out = await run_processors([TurnTimeout(3.0)], [UserStoppedSpeaking(turn=0), 10.0])
    assert [f.text for f in out.of(TextIn)] == ["timeout at 3.0"]
    assert loop.time() == pytest.approx(10.0)


@pytest.mark.virtual_time
async def test_virtual_clock_timer_cancelled_by_interruption_never_fires() -> None:
    out = await run_processors(
        [TurnTimeout(3.0)], [UserStoppedSpeaking(turn=0), 1.0, InterruptionFrame(), 5.0]
    )
    assert out.of(TextIn) == []
