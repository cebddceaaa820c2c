"""The speech processors, driven frame by frame with fake engines (tests/fakes/engines.py).

Most tests run on virtual time: an input script interleaves frames with waits on the
session clock, and a probe at the end of the pipeline records each frame with the
clock time and the session's turn at its arrival, so timing is asserted exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast, overload

import numpy as np
import pytest
from fakes.engines import (
    FakeChatClient,
    FakeEmotionBackend,
    FakeSTTEngine,
    FakeSynth,
    FakeTurnEngine,
    InlinePool,
    connection_error,
)

from framecast.exceptions import EngineError
from framecast.frames import (
    AudioIn,
    AudioOut,
    BotStartedSpeaking,
    BotStoppedSpeaking,
    EmotionTag,
    EndFrame,
    EndOfTurn,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMText,
    PlaybackInterrupted,
    ReplyEnded,
    ReplyStarted,
    Sentence,
    StartFrame,
    TextIn,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from framecast.processor import UP, Direction, Processor
from framecast.processors import (
    DEFAULT_SYSTEM_PROMPT,
    EmotionTagger,
    EnergyGate,
    SentenceAggregator,
    SmartTurn,
    TTSProcessor,
    VLLMChat,
    WhisperSTT,
)
from framecast.session import Session
from framecast.testing import run_processors
from framecast.workers import WorkerPool

RATE = 16_000
CHUNK = 1600  # samples in 100 ms


# --- harness ---------------------------------------------------------------------------


F = TypeVar("F", bound=Frame)


@dataclass(frozen=True)
class Arrival(Generic[F]):
    """A frame at the end of the pipeline, with the clock and the session turn then."""

    frame: F
    at: float
    turn: int


class Probe(Processor):
    """Last processor: records every frame going down, wakes waiters on each."""

    def __init__(self) -> None:
        super().__init__(name="probe")
        self.arrivals: list[Arrival[Frame]] = []
        self.changed = asyncio.Event()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is not UP:
            self.arrivals.append(Arrival(frame, self.clock.now(), self.session.turn))
            self.changed.set()
        await self.push(frame, direction)


@dataclass(frozen=True)
class Up:
    """Script step: push ``frame`` upstream from the end of the pipeline."""

    frame: Frame


@dataclass(frozen=True)
class Until:
    """Script step: wait (real time, bounded) until ``done(arrivals)`` is true."""

    done: Callable[[list[Arrival[Frame]]], bool]


Action = Callable[[Session], Frame | None]
Step = Frame | float | Up | Until | Action


@dataclass
class Run:
    session: Session
    arrivals: list[Arrival[Frame]]
    up: list[Frame] = field(default_factory=list)

    @overload
    def frames(self, kind: type[F]) -> list[F]: ...
    @overload
    def frames(self, kind: tuple[type[Frame], ...] = ...) -> list[Frame]: ...
    def frames(self, kind: type[Frame] | tuple[type[Frame], ...] = Frame) -> list[Any]:
        """Frames that came out at the end, in order, without the session's own."""
        return [
            a.frame
            for a in self.arrivals
            if isinstance(a.frame, kind) and not isinstance(a.frame, StartFrame | EndFrame)
        ]

    def of(self, kind: type[F]) -> list[Arrival[F]]:
        """Arrivals of one frame type, in order."""
        return [cast(Arrival[F], a) for a in self.arrivals if isinstance(a.frame, kind)]

    def errors(self) -> list[ErrorFrame]:
        return [f for f in self.up if isinstance(f, ErrorFrame)]


async def drive(processors: Sequence[Processor], script: Sequence[Step]) -> Run:
    """Like :func:`framecast.testing.run_processors`, with a probe and more kinds of steps.

    Steps: a frame (pushed down), a number (seconds to wait on the session clock),
    ``InterruptionFrame()`` (a real interruption), :class:`Up`, :class:`Until`, or a
    callable given the session that may return a frame to push (so input can be stamped
    with the turn current at that moment, as a transport does).
    """
    probe = Probe()
    up: list[Frame] = []

    async def on_upstream(frame: Frame) -> None:
        up.append(frame)

    session = Session([*processors, probe], on_upstream=on_upstream)
    run = Run(session, probe.arrivals, up)
    await session.start()
    try:
        for step in script:
            if isinstance(step, int | float):
                await session.clock.sleep(float(step))
            elif isinstance(step, InterruptionFrame):
                turn = await session.interrupt()
                await session.push(InterruptionFrame(turn=turn, ts=session.clock.now()))
            elif isinstance(step, Up):
                await session.push(step.frame, UP)
            elif isinstance(step, Until):
                async with asyncio.timeout(5.0):
                    while not step.done(probe.arrivals):
                        probe.changed.clear()
                        await probe.changed.wait()
            elif isinstance(step, Frame):
                await session.push(step)
            else:
                frame = step(session)
                if frame is not None:
                    await session.push(frame)
    finally:
        await session.stop()
    return run


def mic(pcm: bytes) -> Action:
    """Microphone audio, stamped with the current turn and time like a transport does."""
    return lambda s: AudioIn(pcm=pcm, turn=s.turn, ts=s.clock.now())


def const(value: int, samples: int) -> bytes:
    """PCM16 with every sample ``value`` (a "tone" for the gate, a word for FakeSTTEngine)."""
    return np.full(samples, value, dtype="<i2").tobytes()


def tone(samples: int, *, hz: float = 440.0, amplitude: float = 8000.0) -> bytes:
    """A sine tone (RMS about 5700: voiced for the gate's threshold of 600)."""
    t = np.arange(samples) / RATE
    return np.round(amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def paced(pcm: bytes, chunk_samples: int) -> list[Step]:
    """``pcm`` as microphone chunks, each pushed when its last sample has been "recorded"."""
    steps: list[Step] = []
    size = chunk_samples * 2
    for offset in range(0, len(pcm), size):
        piece = pcm[offset : offset + size]
        steps += [len(piece) / 2 / RATE, mic(piece)]
    return steps


def shape(frames: Sequence[Frame]) -> list[str]:
    """Frame names in order, runs of audio collapsed to one "audio"."""
    names: list[str] = []
    for frame in frames:
        name = "audio" if isinstance(frame, AudioIn) else type(frame).__name__
        if not (name == "audio" and names and names[-1] == "audio"):
            names.append(name)
    return names


def words(first: int, last: int) -> str:
    """What FakeSTTEngine hears in chunks of the values first..last."""
    return " ".join(f"w{v}" for v in range(first, last + 1))


# --- EnergyGate ------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_gate_keeps_audio_in_order_around_events_and_opens_turn_one() -> None:
    silence = const(0, RATE // 2)
    pcm = silence + tone(RATE * 6 // 10) + silence  # the tone from 0.5 s to 1.1 s
    run = await drive([EnergyGate()], paced(pcm, 592))  # 37 ms chunks, the last one short

    frames = run.frames()
    assert shape(frames) == [
        "audio",
        "InterruptionFrame",
        "UserStartedSpeaking",
        "audio",
        "UserStoppedSpeaking",
        "audio",
    ]
    audio = [f for f in frames if isinstance(f, AudioIn)]
    assert b"".join(f.pcm for f in audio) == pcm
    start = next(i for i, f in enumerate(frames) if isinstance(f, UserStartedSpeaking))
    stop = next(i for i, f in enumerate(frames) if isinstance(f, UserStoppedSpeaking))
    # A new turn is confirmed once speech has lasted 200 ms from its onset (8000), at
    # the end of the 37 ms chunk where that happens (19 x 592 = 11248); the pause after
    # 200 ms of quiet.
    assert sum(len(f.pcm) for f in frames[:start] if isinstance(f, AudioIn)) == 2 * 11248
    assert sum(len(f.pcm) for f in frames[:stop] if isinstance(f, AudioIn)) == 2 * (17600 + 3200)
    assert {f.turn for f in frames[:start] if isinstance(f, AudioIn)} == {0}
    assert {f.turn for f in frames[start:] if not isinstance(f, EndFrame)} == {1}
    assert run.session.turn == 1
    assert run.session.user_turn_ended is False
    speech_end = run.session.timeline(1).marks["user_speech_end"]
    assert 1.1 - 1e-9 <= speech_end < 1.1 + 0.02


@pytest.mark.virtual_time
async def test_gate_ignores_a_short_burst_after_the_turn_ended_but_confirms_real_speech() -> None:
    quiet = const(0, RATE * 3 // 10)
    first, cough, speech = (
        quiet + tone(RATE * 4 // 10) + quiet,
        tone(RATE * 15 // 100) + quiet,
        tone(RATE * 4 // 10) + quiet,
    )
    script: list[Step] = [
        *paced(first, 800),  # turn 1
        lambda s: s.end_user_turn(),  # the bot is replying now
        *paced(cough, 800),  # a 150 ms cough: not a barge-in
        *paced(speech, 800),  # 400 ms of speech: a barge-in
    ]
    run = await drive([EnergyGate(confirm_ms=200)], script)

    events = run.frames((InterruptionFrame, UserStartedSpeaking, UserStoppedSpeaking))
    assert [(type(f).__name__, f.turn) for f in events] == [
        ("InterruptionFrame", 1),
        ("UserStartedSpeaking", 1),
        ("UserStoppedSpeaking", 1),
        ("InterruptionFrame", 2),
        ("UserStartedSpeaking", 2),
        ("UserStoppedSpeaking", 2),
    ]
    assert b"".join(f.pcm for f in run.frames(AudioIn)) == first + cough + speech  # nothing lost


@pytest.mark.virtual_time
async def test_gate_resume_stays_in_the_turn_and_speech_after_its_end_opens_the_next() -> None:
    quiet, voice = const(0, RATE * 3 // 10), tone(RATE * 4 // 10)
    script: list[Step] = [
        *paced(quiet + voice + quiet, 800),  # speech, then a pause (maybe done)
        *paced(voice + quiet, 800),  # resumes before the turn ended: same turn
        lambda s: s.end_user_turn(),  # what SmartTurn does when the turn is over
        *paced(voice + quiet, 800),  # the next utterance: a new turn
    ]
    run = await drive([EnergyGate()], script)

    events = run.frames((InterruptionFrame, UserStartedSpeaking, UserStoppedSpeaking))
    assert [(type(f).__name__, f.turn) for f in events] == [
        ("InterruptionFrame", 1),
        ("UserStartedSpeaking", 1),
        ("UserStoppedSpeaking", 1),
        ("UserStartedSpeaking", 1),
        ("UserStoppedSpeaking", 1),
        ("InterruptionFrame", 2),
        ("UserStartedSpeaking", 2),
        ("UserStoppedSpeaking", 2),
    ]
    assert run.session.turn == 2


# --- WhisperSTT --------------------------------------------------------------------------------


def utterance(turn: int, values: Sequence[int], *, gap: float = 0.1) -> list[Step]:
    """UserStartedSpeaking, a 100 ms chunk per value (paced), UserStoppedSpeaking."""
    steps: list[Step] = [UserStartedSpeaking(turn=turn)]
    for value in values:
        steps += [mic(const(value, CHUNK)), gap]
    steps.append(UserStoppedSpeaking(turn=turn, silence_ms=200))
    return steps


def preroll(values: Sequence[int]) -> list[Step]:
    """Quiet 100 ms chunks heard before speech starts."""
    return [mic(const(v, CHUNK)) for v in values]


def transcripts(run: Run) -> list[str]:
    """Speech events and transcripts in order: "start", "stop", "partial:..", "final:..."."""
    out: list[str] = []
    for frame in run.frames((UserStartedSpeaking, UserStoppedSpeaking, Transcript)):
        if isinstance(frame, Transcript):
            out.append(f"{'final' if frame.final else 'partial'}:{frame.text}")
        else:
            out.append("start" if isinstance(frame, UserStartedSpeaking) else "stop")
    return out


@pytest.mark.virtual_time
async def test_stt_partials_while_speaking_one_final_per_pause_with_preroll() -> None:
    engine = FakeSTTEngine()
    stt = WhisperSTT(engine, InlinePool(delay=0.05), partial_interval_s=0.3, preroll_s=0.3)
    script: list[Step] = [
        *preroll([1, 2, 3, 4, 5]),
        *utterance(0, range(101, 109)),
        *preroll([6, 7, 8]),
        1.0,
        *utterance(0, range(111, 115)),
        1.0,
    ]
    run = await drive([stt], script)

    assert transcripts(run) == [
        "start",
        f"partial:{words(101, 103)}",
        f"partial:{words(101, 106)}",
        "stop",
        f"final:{words(101, 108)}",
        "start",
        f"partial:{words(111, 113)}",
        "stop",
        f"final:{words(111, 114)}",
    ]
    # The final decode of the first utterance: 300 ms of pre-roll, then all the speech.
    final = engine.calls[2]
    expected = np.repeat([3, 4, 5, *range(101, 109)], CHUNK)
    assert final.samples.tolist() == expected.tolist()
    assert engine.calls[4].samples[: 3 * CHUNK].tolist() == np.repeat([6, 7, 8], CHUNK).tolist()
    assert [c.prompt for c in engine.calls] == [None] * 5
    # Both pauses are in turn 0: the turn's transcript is final with the last one.
    assert run.session.timeline(0).marks["transcript_final"] == pytest.approx(2.2 + 0.05)


@pytest.mark.virtual_time
async def test_stt_partial_scheduled_right_before_the_pause_decodes_its_audio_and_is_dropped() -> (
    None
):
    engine = FakeSTTEngine(["guess", "final words"])
    stt = WhisperSTT(engine, InlinePool(delay=0.05), partial_interval_s=0.3, preroll_s=0.1)
    # The third chunk asks for a partial, and the pause arrives before that task has run
    # (as when the gate pushes audio and the event from one input chunk).
    script: list[Step] = [UserStartedSpeaking(turn=0)]
    script += [mic(const(v, CHUNK)) for v in (101, 102, 103)]
    script += [UserStoppedSpeaking(turn=0, silence_ms=200), 1.0]
    run = await drive([stt], script)

    assert [c.n for c in engine.calls] == [3 * CHUNK, 3 * CHUNK]
    assert transcripts(run) == ["start", "stop", "final:final words"]


@pytest.mark.virtual_time
async def test_stt_final_is_empty_and_an_error_goes_upstream_when_the_engine_fails() -> None:
    engine = FakeSTTEngine([EngineError("decoder blew up")])
    stt = WhisperSTT(engine, InlinePool(delay=0.05), partials=False)
    run = await drive([stt], [*utterance(0, [101, 102]), 1.0, *utterance(0, [103]), 1.0])

    assert transcripts(run) == ["start", "stop", "final:", "start", "stop", "final:w103"]
    [error] = run.errors()
    assert (error.code, error.processor, error.message) == (
        "engine",
        "WhisperSTT",
        "decoder blew up",
    )


@pytest.mark.virtual_time
async def test_stt_commits_long_speech_and_decodes_only_the_rest_with_a_prompt() -> None:
    engine = FakeSTTEngine()
    stt = WhisperSTT(
        engine, InlinePool(delay=0.05), partial_interval_s=0.3, commit_after_s=1.0, preroll_s=0.3
    )
    run = await drive([stt], [*preroll([1, 2, 3]), *utterance(0, range(101, 116)), 1.0])

    committed = words(101, 108)  # the third partial decoded 1.2 s: all but its last segment
    assert [(c.n, c.prompt) for c in engine.calls] == [
        (6 * CHUNK, None),  # pre-roll + 101..103
        (9 * CHUNK, None),
        (12 * CHUNK, None),  # >= 1 s: commits up to the end of w108
        (4 * CHUNK, committed),  # 109..112 only
        (7 * CHUNK, committed),
        (7 * CHUNK, committed),  # the final: 109..115
    ]
    assert engine.calls[3].samples[0] == 109
    assert transcripts(run) == [
        "start",
        f"partial:{words(101, 103)}",
        f"partial:{words(101, 106)}",
        f"partial:{words(101, 109)}",
        f"partial:{words(101, 112)}",
        f"partial:{words(101, 115)}",
        "stop",
        f"final:{words(101, 115)}",
    ]


async def test_stt_and_emotion_with_real_worker_threads() -> None:
    stt_pool, emotion_pool = WorkerPool(1), WorkerPool(1)
    try:
        engine, backend = FakeSTTEngine(), FakeEmotionBackend("calm", 0.7)
        voice = const(3000, RATE // 2)  # one "word" to FakeSTTEngine, voiced to the gate
        pcm = const(0, 4000) + voice + const(0, 8000)
        script: list[Step] = [mic(piece) for piece in _split(pcm)]
        script.append(Until(lambda arrivals: any(_is_final(a.frame) for a in arrivals)))
        run = await drive(
            [
                EnergyGate(),
                WhisperSTT(engine, stt_pool, partial_interval_s=0.1),
                EmotionTagger(backend, emotion_pool),
            ],
            script,
        )
    finally:
        stt_pool.close()
        emotion_pool.close()

    frames = run.frames((Transcript, EmotionTag, UserStoppedSpeaking))
    final_at = next(i for i, f in enumerate(frames) if _is_final(f))
    tag, final = frames[final_at - 1], frames[final_at]
    assert (type(tag).__name__, getattr(tag, "label", "")) == ("EmotionTag", "calm")
    assert (getattr(final, "text", ""), final.turn) == ("w3000", 1)
    assert not any(isinstance(f, Transcript) for f in frames[final_at + 1 :])
    # The tagger hears the utterance with 0.5 s of pre-roll before the gate's (confirmed)
    # start event, which here reaches back to the first sample, up to its pause event
    # (200 ms after the last voiced frame).
    assert backend.calls == [(15360, "w3000")]


def _split(pcm: bytes, size: int = 3200) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def _is_final(frame: Frame) -> bool:
    return isinstance(frame, Transcript) and frame.final


# --- SmartTurn ---------------------------------------------------------------------------


def speech(turn: int, chunks: int) -> list[Step]:
    """UserStartedSpeaking and ``chunks`` paced 100 ms chunks of voice."""
    steps: list[Step] = [UserStartedSpeaking(turn=turn)]
    for _ in range(chunks):
        steps += [0.1, AudioIn(pcm=const(2000, CHUNK), turn=turn)]
    return steps


def pause(turn: int, silence_ms: float, marks: dict[str, float]) -> list[Step]:
    """UserStoppedSpeaking, remembering when it was pushed in ``marks['pause']``."""

    def note(session: Session) -> None:
        marks.setdefault("pause", session.clock.now())

    return [note, UserStoppedSpeaking(turn=turn, silence_ms=silence_ms)]


@pytest.mark.virtual_time
async def test_turn_complete_ends_the_turn_at_once() -> None:
    engine, t = FakeTurnEngine([0.9]), dict[str, float]()
    turn = SmartTurn(engine, InlinePool())
    run = await drive([turn], [InterruptionFrame(), *speech(1, 5), *pause(1, 200, t), 2.0])

    [end] = run.of(EndOfTurn)
    assert (end.frame.probability, end.frame.reason, end.frame.turn) == (0.9, "model", 1)
    assert end.at == t["pause"]
    assert end.frame.ts == t["pause"]
    assert engine.calls == [5 * CHUNK]  # the turn's audio since speech started
    assert run.session.user_turn_ended is True
    assert run.session.timeline(1).marks["end_of_turn"] == t["pause"]


@pytest.mark.virtual_time
async def test_turn_incomplete_times_out_after_max_wait_of_silence() -> None:
    engine, t = FakeTurnEngine([0.2]), dict[str, float]()
    turn = SmartTurn(engine, InlinePool(), max_wait_s=3.0, recheck_s=0.5)
    run = await drive([turn], [InterruptionFrame(), *speech(1, 3), *pause(1, 250, t), 5.0])

    [end] = run.of(EndOfTurn)
    assert (end.frame.probability, end.frame.reason) == (0.2, "timeout")
    assert end.at == t["pause"] + 2.75  # 3 s of silence; 0.25 s had passed at the pause
    # Scored at 0.25, 0.75, ..., 2.75 and 3.0 s of silence.
    assert len(engine.calls) == 7
    assert run.session.user_turn_ended is True


@pytest.mark.parametrize(
    ("final", "reason", "after"),
    [
        ("He might have been made amiable himself.", "transcript", 1.0),  # prose Smart Turn doubts
        ("He might have been made", "timeout", 2.75),  # an open sentence waits for the fallback
    ],
)
@pytest.mark.virtual_time
async def test_turn_a_closed_sentence_ends_the_turn_at_the_first_recheck(
    final: str, reason: str, after: float
) -> None:
    engine, t = FakeTurnEngine([0.2]), dict[str, float]()
    turn = SmartTurn(engine, InlinePool(), max_wait_s=3.0, recheck_s=1.0)
    script: list[Step] = [
        InterruptionFrame(),
        *speech(1, 3),
        *pause(1, 250, t),
        0.1,
        Transcript(text=final, final=True, turn=1),
        5.0,
    ]
    run = await drive([turn], script)

    [end] = run.of(EndOfTurn)
    assert end.frame.reason == reason
    assert end.at == pytest.approx(t["pause"] + after)


@pytest.mark.virtual_time
async def test_turn_speech_resuming_cancels_the_wait() -> None:
    engine = FakeTurnEngine([0.2, 0.2, 0.2, 0.9])
    t1, t2 = dict[str, float](), dict[str, float]()
    turn = SmartTurn(engine, InlinePool(), max_wait_s=3.0, recheck_s=0.5)
    script: list[Step] = [
        InterruptionFrame(),
        *speech(1, 5),
        *pause(1, 250, t1),
        1.2,  # scored 3 times (0.25, 0.75, 1.25 s of silence), then the user goes on
        *speech(1, 2),
        5.0,  # longer than max_wait: the cancelled wait must not fire
        *pause(1, 250, t2),
        2.0,
    ]
    run = await drive([turn], script)

    [end] = run.of(EndOfTurn)
    assert (end.at, end.frame.reason, end.frame.probability) == (t2["pause"], "model", 0.9)
    assert engine.calls == [5 * CHUNK] * 3 + [7 * CHUNK]


@pytest.mark.virtual_time
async def test_turn_silence_mode_ends_after_silence_s() -> None:
    t: dict[str, float] = {}
    turn = SmartTurn(None, None, mode="silence", silence_s=0.8)
    script: list[Step] = [
        InterruptionFrame(),
        *speech(1, 3),
        UserStoppedSpeaking(turn=1, silence_ms=200),
        0.5,
        *speech(1, 1),  # resumes within 0.6 s: no end
        *pause(1, 200, t),
        2.0,
    ]
    run = await drive([turn], script)

    [end] = run.of(EndOfTurn)
    assert end.frame.reason == "silence"
    assert end.at == pytest.approx(t["pause"] + 0.6)
    assert run.session.user_turn_ended is True


# --- EmotionTagger -------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_emotion_tag_comes_right_before_the_final_transcript() -> None:
    backend = FakeEmotionBackend("happy", 0.8)
    inputs = [
        UserStartedSpeaking(),
        *[AudioIn(pcm=const(500, CHUNK)) for _ in range(3)],
        UserStoppedSpeaking(),
        AudioIn(pcm=const(0, CHUNK)),  # after the speech: not part of the utterance
        Transcript(text="hello", final=False),
        Transcript(text="hello there", final=True),
        TextIn(text="typed"),
    ]
    out = await run_processors([EmotionTagger(backend, InlinePool())], inputs)

    kinds = [
        (type(f).__name__, getattr(f, "text", getattr(f, "label", "")))
        for f in out.data()
        if not isinstance(f, AudioIn)
    ]
    assert kinds == [
        ("UserStartedSpeaking", ""),
        ("UserStoppedSpeaking", ""),
        ("Transcript", "hello"),
        ("EmotionTag", "happy"),
        ("Transcript", "hello there"),
        ("EmotionTag", "happy"),
        ("TextIn", "typed"),
    ]
    assert [(t.score, t.ts) for t in out.of(EmotionTag)] == [
        (0.8, 0.0),
        (0.8, 0.0),
    ]  # virtual clock
    assert backend.calls == [(3 * CHUNK, "hello there"), (0, "typed")]


@pytest.mark.virtual_time
async def test_emotion_backend_error_is_reported_and_the_transcript_passes() -> None:
    backend = FakeEmotionBackend(error=EngineError("prosody failed"))
    inputs = [UserStartedSpeaking(), UserStoppedSpeaking(), Transcript(text="hi", final=True)]
    out = await run_processors([EmotionTagger(backend, InlinePool())], inputs)

    assert [f.text for f in out.of(Transcript)] == ["hi"]
    assert out.of(EmotionTag) == []
    [error] = out.of(ErrorFrame, up=True)
    assert (error.processor, error.code, error.message) == (
        "EmotionTagger",
        "engine",
        "prosody failed",
    )


# --- VLLMChat --------------------------------------------------------------------------------


def spoken(turn: int, text: str, *, emotion: str | None = None) -> list[Step]:
    """A spoken user turn as the stages before the LLM deliver it."""
    steps: list[Step] = [UserStartedSpeaking(turn=turn), UserStoppedSpeaking(turn=turn)]
    if emotion is not None:
        steps.append(EmotionTag(label=emotion, score=0.9, turn=turn))
    steps += [Transcript(text=text, final=True, turn=turn), EndOfTurn(turn=turn)]
    return steps


def chat(client: FakeChatClient, *, history_turns: int = 10) -> VLLMChat:
    return VLLMChat(client, model="test-model", history_turns=history_turns)


@pytest.mark.virtual_time
async def test_llm_waits_for_the_final_transcript_when_end_of_turn_comes_first() -> None:
    client = FakeChatClient([["Noon."]])
    script: list[Step] = [
        InterruptionFrame(),
        UserStartedSpeaking(turn=1),
        UserStoppedSpeaking(turn=1),
        UserStartedSpeaking(turn=1),
        UserStoppedSpeaking(turn=1),
        EndOfTurn(turn=1),
        1.0,
        Transcript(text="what time", final=True, turn=1),
        1.0,  # one segment's final is still missing: no reply yet
        Transcript(text="is it", final=True, turn=1),
        1.0,
    ]
    run = await drive([chat(client)], script)

    [started] = run.of(ReplyStarted)
    assert started.at == 2.0  # when the last final arrived
    assert [r["messages"][-1] for r in client.requests] == [
        {"role": "user", "content": "what time is it"}
    ]
    assert [f.text for f in run.frames(ReplyEnded)] == ["Noon."]


@pytest.mark.virtual_time
async def test_llm_no_reply_for_an_empty_turn() -> None:
    client = FakeChatClient([])
    run = await drive([chat(client)], [InterruptionFrame(), *spoken(1, "  "), 1.0])

    assert client.requests == []
    assert run.frames((ReplyStarted, LLMText, ReplyEnded)) == []


@pytest.mark.virtual_time
async def test_llm_request_carries_prompt_history_settings_and_tone_hint() -> None:
    client = FakeChatClient([["Hi", " there!"], ["Fine,", " thanks."], ["Bye."]])
    script: list[Step] = [
        InterruptionFrame(),
        *spoken(1, "hello", emotion="happy"),
        1.0,
        InterruptionFrame(),
        TextIn(text="how are you", turn=2),
        1.0,
        InterruptionFrame(),
        *spoken(3, "see you", emotion="neutral"),
        1.0,
    ]
    run = await drive([chat(client, history_turns=2)], script)

    first, _, third = client.requests
    assert first["messages"] == [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "hello (tone of voice: happy)"},
    ]
    assert third["messages"] == [  # two exchanges of history: the oldest one is gone
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "how are you"},
        {"role": "assistant", "content": "Fine, thanks."},
        {"role": "user", "content": "see you"},
    ]
    for request in client.requests:
        assert request["model"] == "test-model"
        assert request["stream"] is True
        assert request["max_tokens"] == 256
        assert request["temperature"] == 0.6
    reply = [
        (type(f).__name__, getattr(f, "text", ""))
        for f in run.frames((ReplyStarted, LLMText, ReplyEnded))
        if f.turn == 1
    ]
    assert reply == [
        ("ReplyStarted", ""),
        ("LLMText", "Hi"),
        ("LLMText", " there!"),
        ("ReplyEnded", "Hi there!"),
    ]


@pytest.mark.virtual_time
async def test_llm_unreachable_endpoint_reports_and_the_next_turn_works() -> None:
    client = FakeChatClient([connection_error(), ["OK."]])
    script: list[Step] = [
        InterruptionFrame(),
        TextIn(text="hello", turn=1),
        1.0,
        InterruptionFrame(),
        TextIn(text="again", turn=2),
        1.0,
    ]
    run = await drive([chat(client)], script)

    [error] = run.errors()
    assert (error.code, error.retryable, error.processor, error.turn) == (
        "remote_service",
        True,
        "VLLMChat",
        1,
    )
    assert "unreachable" in error.message
    assert [(f.turn, f.text) for f in run.frames(ReplyEnded)] == [(1, ""), (2, "OK.")]
    # The unanswered words stay in the history, merged with the next ones.
    assert client.requests[1]["messages"][1:] == [{"role": "user", "content": "hello again"}]


@pytest.mark.virtual_time
async def test_llm_interruption_closes_the_stream_and_history_keeps_what_was_heard() -> None:
    client = FakeChatClient([["Once", " upon", " a", " time."], ["Okay."]], delay=0.1)
    llm = chat(client)
    history: list[list[dict[str, str]]] = []
    script: list[Step] = [
        InterruptionFrame(),
        TextIn(text="tell me a story", turn=1),
        0.25,  # two pieces streamed
        InterruptionFrame(),
        lambda s: history.append(llm.messages),
        Up(PlaybackInterrupted(turn=2, reply_turn=1, heard_text="Once")),
        TextIn(text="shorter", turn=2),
        1.0,
    ]
    run = await drive([llm], script)

    old = client.streams[0]
    assert old.closed
    assert old.delivered == ["Once", " upon"]
    assert [a.frame.text for a in run.of(LLMText) if a.frame.turn == 1] == ["Once", " upon"]
    assert all(a.turn == a.frame.turn for a in run.of(LLMText))
    assert [f.turn for f in run.frames(ReplyEnded)] == [2]
    assert history[0][-1] == {"role": "assistant", "content": "Once upon"}
    assert client.requests[1]["messages"][1:] == [
        {"role": "user", "content": "tell me a story"},
        {"role": "assistant", "content": "Once"},
        {"role": "user", "content": "shorter"},
    ]


@pytest.mark.virtual_time
async def test_llm_answers_a_question_cut_off_by_a_noise_before_any_of_it_was_heard() -> None:
    client = FakeChatClient([["Ten", " meters", " it", " is."], ["Going", " now."]], delay=0.1)
    llm = chat(client)
    script: list[Step] = [
        InterruptionFrame(),
        TextIn(text="go forward ten meters", turn=1),
        0.15,  # the reply has begun streaming, nothing was played yet
        InterruptionFrame(),  # a barge-in...
        Up(PlaybackInterrupted(turn=2, reply_turn=1, heard_text="")),
        *spoken(2, ""),  # ...that was only a noise: its final transcript is empty
        1.0,
    ]
    run = await drive([llm], script)

    assert len(client.requests) == 2
    assert client.requests[1]["messages"][1:] == [
        {"role": "user", "content": "go forward ten meters"},
    ]
    assert [(f.turn, f.text) for f in run.frames(ReplyEnded)] == [(2, "Going now.")]


# --- SentenceAggregator ------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_sentences_follow_the_text_they_complete_and_flush_at_reply_end() -> None:
    pieces = ["Sure thing my friend, I", " can help. It", " is easy! Just", " ask"]
    script: list[Step] = [InterruptionFrame(), ReplyStarted(turn=1)]
    for piece in pieces:
        script += [0.1, LLMText(text=piece, turn=1)]
    script += [ReplyEnded(turn=1, text="".join(pieces))]
    run = await drive([SentenceAggregator()], script)

    out = [
        f"{type(f).__name__}:{getattr(f, 'text', '')}"
        for f in run.frames((LLMText, Sentence, ReplyEnded))
    ]
    assert out == [
        "LLMText:Sure thing my friend, I",
        "Sentence:Sure thing my friend,",  # the eager first clause
        "LLMText: can help. It",
        "Sentence:I can help.",
        "LLMText: is easy! Just",
        "Sentence:It is easy!",
        "LLMText: ask",
        "Sentence:Just ask",  # flushed by ReplyEnded, before it
        f"ReplyEnded:{''.join(pieces)}",
    ]
    assert run.session.timeline(1).marks["first_sentence"] == pytest.approx(0.1)


@pytest.mark.virtual_time
async def test_sentences_interruption_discards_the_unfinished_text() -> None:
    script: list[Step] = [
        InterruptionFrame(),
        LLMText(text="Half a sent", turn=1),
        InterruptionFrame(),
        LLMText(text="New one.", turn=2),
        ReplyEnded(turn=2),
    ]
    run = await drive([SentenceAggregator()], script)

    assert [f.text for f in run.frames(Sentence)] == ["New one."]


# --- TTSProcessor ------------------------------------------------------------------------------


def speech_out(run: Run) -> list[str]:
    """The TTS output as readable strings (AudioOut shows its chunk and first-chunk text)."""
    out: list[str] = []
    for frame in run.frames((AudioOut, BotStartedSpeaking, BotStoppedSpeaking, ReplyEnded)):
        if isinstance(frame, AudioOut):
            said = frame.pcm.rstrip(b"\0").decode()
            out.append(f"audio {said} [{frame.text}]")
        else:
            out.append(type(frame).__name__)
    return out


@pytest.mark.virtual_time
async def test_tts_speaks_sentences_in_order_between_bot_events() -> None:
    synth = FakeSynth(chunks=2, delay=0.01)
    script: list[Step] = [
        InterruptionFrame(),
        Sentence(text="Hello there.", turn=1),
        Sentence(text="How are you?", turn=1),
        ReplyEnded(turn=1, text="Hello there. How are you?"),
        1.0,
        ReplyEnded(turn=1, text=""),  # a reply with nothing to say passes straight on
    ]
    run = await drive([TTSProcessor(synth)], script)

    assert speech_out(run) == [
        "BotStartedSpeaking",
        "audio Hello there.#0 [Hello there.]",
        "audio Hello there.#1 []",
        "audio How are you?#0 [How are you?]",
        "audio How are you?#1 []",
        "BotStoppedSpeaking",
        "ReplyEnded",
        "ReplyEnded",
    ]
    assert [f.sample_rate for f in run.frames(BotStartedSpeaking)] == [24_000]
    assert [f.sample_rate for f in run.frames(AudioOut)] == [24_000] * 4
    assert run.session.timeline(1).marks["tts_first_audio"] == pytest.approx(0.01)
    # Frames are stamped on the session clock (virtual here), not the wall clock.
    assert all(a.frame.ts == a.at for a in run.of(AudioOut) + run.of(BotStartedSpeaking))
    assert synth.events == [
        ("start", "Hello there."),
        ("done", "Hello there."),
        ("start", "How are you?"),
        ("done", "How are you?"),
    ]


@pytest.mark.virtual_time
async def test_tts_barge_in_stops_old_audio_and_closes_the_stream() -> None:
    synth = FakeSynth(chunks=10, delay=0.05)
    script: list[Step] = [
        InterruptionFrame(),
        Sentence(text="A long sentence.", turn=1),
        Sentence(text="Never spoken.", turn=1),
        ReplyEnded(turn=1),
        0.12,  # two chunks out
        InterruptionFrame(),
        1.0,
        Sentence(text="New.", turn=2),
        ReplyEnded(turn=2),
        1.0,
    ]
    run = await drive([TTSProcessor(synth)], script)

    cut = next(
        i
        for i, a in enumerate(run.arrivals)
        if isinstance(a.frame, InterruptionFrame) and a.frame.turn == 2
    )
    old = [a for a in run.of(AudioOut) if a.frame.turn == 1]
    assert [a.turn for a in old] == [1, 1]  # two chunks, each while turn 1 was current
    assert not any(isinstance(a.frame, AudioOut) and a.frame.turn == 1 for a in run.arrivals[cut:])
    assert [type(f).__name__ for f in run.frames((BotStoppedSpeaking, ReplyEnded))] == [
        "BotStoppedSpeaking",
        "ReplyEnded",
    ]
    assert {f.turn for f in run.frames((BotStoppedSpeaking, ReplyEnded))} == {2}
    assert synth.events[:2] == [("start", "A long sentence."), ("closed", "A long sentence.")]
    assert ("start", "Never spoken.") not in synth.events
    assert len([a for a in run.of(AudioOut) if a.frame.turn == 2]) == 10


@pytest.mark.parametrize("fail_after", [0, 1])
@pytest.mark.virtual_time
async def test_tts_failing_sentence_is_reported_and_the_next_is_spoken(fail_after: int) -> None:
    synth = FakeSynth(chunks=2, fail={"Bad one.": fail_after})
    script: list[Step] = [
        InterruptionFrame(),
        Sentence(text="Good.", turn=1),
        Sentence(text="Bad one.", turn=1),
        Sentence(text="Fine.", turn=1),
        ReplyEnded(turn=1),
        1.0,
    ]
    run = await drive([TTSProcessor(synth)], script)

    bad = ["audio Bad one.#0 [Bad one.]"] if fail_after else []
    assert speech_out(run) == [
        "BotStartedSpeaking",
        "audio Good.#0 [Good.]",
        "audio Good.#1 []",
        *bad,
        "audio Fine.#0 [Fine.]",
        "audio Fine.#1 []",
        "BotStoppedSpeaking",
        "ReplyEnded",
    ]
    [error] = run.errors()
    assert (error.code, error.processor, error.turn) == ("engine", "TTSProcessor", 1)
    assert ("failed", "Bad one.") in synth.events


class _Kokoroish:
    """A local TTS engine stand-in: one chunk per sentence."""

    sample_rate = 24000

    def synthesize(self, text: str, *, voice: str = "", speed: float = 1.0) -> Iterator[bytes]:
        yield text.encode()[:2] * 10


@pytest.mark.virtual_time
async def test_shared_pools_serve_what_someone_waits_for_first() -> None:
    from framecast.processors import KokoroTTS
    from framecast.workers import BACKGROUND, NORMAL, URGENT

    tts_pool, stt_pool = InlinePool(), InlinePool(delay=0.01)
    script: list[Step] = [
        InterruptionFrame(),
        Sentence(text="First words.", turn=1),
        Sentence(text="Then more.", turn=1),
        ReplyEnded(turn=1),
        0.1,
    ]
    await drive([KokoroTTS(_Kokoroish(), tts_pool)], script)
    # one synthesis per sentence: the reply's first goes ahead of other sessions' later ones
    assert tts_pool.priorities == [URGENT, NORMAL]

    stt = WhisperSTT(FakeSTTEngine(), stt_pool, partial_interval_s=0.1)
    await drive([EnergyGate(), stt], paced(const(0, 3200) + tone(RATE) + const(0, 8000), 800))
    assert BACKGROUND in stt_pool.priorities  # partials
    assert stt_pool.priorities[-1] == URGENT  # the final
