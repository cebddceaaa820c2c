"""Scripted stand-ins for the engines the speech processors drive: no models, no network.

Every fake records what it was asked, so tests assert on the calls as well as on the
frames that came out:

- :class:`InlinePool` — a :class:`~framecast.workers.WorkerPool` that runs calls on the
  loop (after an optional delay on the loop's clock), so virtual-time tests stay exact;
- :class:`FakeSTTEngine` — "reads" test audio: each run of one loud sample value ``v``
  is the word ``w{v}`` (with Whisper-like timed segments), or follows a script;
- :class:`FakeTurnEngine`, :class:`FakeEmotionBackend` — scripted answers;
- :class:`FakeChatClient` — the part of ``openai.AsyncOpenAI`` that ``VLLMChat`` uses:
  ``await client.chat.completions.create(**kw)`` returns a stream that is an async
  context manager and an async iterator of chunks;
- :class:`FakeSynth` — a :class:`~framecast.processors.SpeechSynth` whose chunks say
  which sentence and which piece they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ParamSpec, TypeVar

import httpx2
import numpy as np
import numpy.typing as npt
import openai

from framecast.exceptions import EngineError
from framecast.workers import NORMAL, WorkerPool

__all__ = [
    "QUIET",
    "FakeChatClient",
    "FakeChatStream",
    "FakeEmotion",
    "FakeEmotionBackend",
    "FakeSTTEngine",
    "FakeSegment",
    "FakeSynth",
    "FakeTranscription",
    "FakeTurnEngine",
    "FakeTurnPrediction",
    "InlinePool",
    "STTCall",
    "connection_error",
]

P = ParamSpec("P")
T = TypeVar("T")

RATE = 16_000
#: Sample values below this (in magnitude) are silence to :class:`FakeSTTEngine`.
QUIET = 100


class InlinePool(WorkerPool):
    """Runs "blocking" calls on the event loop, each after ``delay`` seconds of loop time.

    Under :class:`~framecast.clock.VirtualTimeLoop` the delay costs no real time but
    still lets other tasks run meanwhile, like a decode in a worker thread would.
    ``calls`` counts the calls made.
    """

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(1, name="inline-pool")  # no thread starts: nothing is submitted
        self.delay = delay
        self.calls = 0
        self.priorities: list[int] = []

    async def call(self, priority: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        self.calls += 1
        self.priorities.append(priority)
        if self.delay:
            await asyncio.sleep(self.delay)
        return fn(*args, **kwargs)

    @property
    def saturated(self) -> bool:
        return False

    async def iterate(
        self, make: Callable[[], Iterator[T]], *, priority: int = NORMAL
    ) -> AsyncGenerator[T, None]:
        iterator = await self.call(priority, make)
        try:
            for item in iterator:
                yield item
                if self.delay:
                    await asyncio.sleep(self.delay)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()


# --- speech to text ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeSegment:
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class FakeTranscription:
    text: str
    segments: tuple[FakeSegment, ...] = ()


@dataclass(frozen=True, slots=True)
class STTCall:
    """One ``transcribe`` call: the audio it got (as int16 values) and the prompt."""

    samples: npt.NDArray[np.int16]
    prompt: str | None

    @property
    def n(self) -> int:
        """Samples decoded."""
        return int(self.samples.size)


class FakeSTTEngine:
    """A speech-to-text engine for test audio.

    Each call takes the next item of ``script`` (a text to return, or an exception to
    raise). Once the script is used up it reads the audio: every run of one sample value
    ``v`` with ``|v| >= QUIET`` becomes a segment with the text ``w{v}``, timed in
    seconds from the start of the audio it was given.
    """

    def __init__(self, script: Sequence[str | Exception] = ()) -> None:
        self._script = list(script)
        self.calls: list[STTCall] = []

    def transcribe(
        self, pcm: npt.NDArray[np.float32], *, prompt: str | None = None
    ) -> FakeTranscription:
        samples = np.round(np.asarray(pcm, dtype=np.float64) * 32768.0).astype(np.int16)
        self.calls.append(STTCall(samples, prompt))
        if self._script:
            item = self._script.pop(0)
            if isinstance(item, Exception):
                raise item
            return FakeTranscription(item, (FakeSegment(0.0, samples.size / RATE, item),))
        segments = tuple(_read_words(samples))
        return FakeTranscription(" ".join(s.text for s in segments), segments)


def _read_words(samples: npt.NDArray[np.int16]) -> Iterator[FakeSegment]:
    if samples.size == 0:
        return
    edges = np.flatnonzero(np.diff(samples)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [samples.size]))
    for start, end in zip(starts, ends, strict=True):
        value = int(samples[start])
        if abs(value) >= QUIET:
            yield FakeSegment(start / RATE, end / RATE, f"w{value}")


# --- end of turn, emotion -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeTurnPrediction:
    probability: float
    complete: bool


class FakeTurnEngine:
    """Answers each ``predict`` with the next probability (the last one repeats).

    ``calls`` holds the number of samples each call got.
    """

    def __init__(self, probabilities: Sequence[float], *, threshold: float = 0.5) -> None:
        self._script = list(probabilities)
        self._threshold = threshold
        self.calls: list[int] = []

    def predict(self, pcm: npt.NDArray[np.float32]) -> FakeTurnPrediction:
        self.calls.append(int(pcm.size))
        p = self._script.pop(0) if len(self._script) > 1 else self._script[0]
        return FakeTurnPrediction(p, p >= self._threshold)


@dataclass(frozen=True, slots=True)
class FakeEmotion:
    label: str
    score: float


class FakeEmotionBackend:
    """Always answers ``label``/``score``, or raises ``error``; ``calls`` holds (samples, text)."""

    def __init__(self, label: str = "happy", score: float = 0.8, *, error: Exception | None = None):
        self.label = label
        self.score = score
        self.error = error
        self.calls: list[tuple[int, str]] = []

    def classify(self, pcm_f32_16k: npt.NDArray[np.float32], transcript: str) -> FakeEmotion:
        self.calls.append((int(pcm_f32_16k.size), transcript))
        if self.error is not None:
            raise self.error
        return FakeEmotion(self.label, self.score)


# --- OpenAI-compatible chat -------------------------------------------------------------


def connection_error(
    url: str = "http://127.0.0.1:9/v1/chat/completions",
) -> openai.APIConnectionError:
    """What ``openai`` raises when nothing listens at ``url``."""
    return openai.APIConnectionError(request=httpx2.Request("POST", url))


def _chunk(content: str | None) -> Any:
    delta = SimpleNamespace(content=content, role="assistant")
    return SimpleNamespace(choices=[SimpleNamespace(index=0, delta=delta, finish_reason=None)])


class FakeChatStream:
    """One streamed completion: pieces arrive every ``delay`` seconds, then a usage chunk.

    ``delivered`` holds the pieces handed out; ``closed`` tells whether the consumer
    closed the stream (``async with`` exit, as with ``openai.AsyncStream``).
    """

    def __init__(self, pieces: Sequence[str], delay: float) -> None:
        # A role-only first chunk and a choice-less usage chunk last, as real servers send.
        self._chunks = [_chunk(None), *map(_chunk, pieces), SimpleNamespace(choices=[])]
        self._delay = delay
        self.delivered: list[str] = []
        self.closed = False

    async def __aenter__(self) -> FakeChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.closed = True

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if self.closed or not self._chunks:
            raise StopAsyncIteration
        chunk = self._chunks.pop(0)
        if chunk.choices and chunk.choices[0].delta.content is not None:
            if self._delay:
                await asyncio.sleep(self._delay)
            self.delivered.append(chunk.choices[0].delta.content)
        return chunk


@dataclass
class _Completions:
    owner: FakeChatClient

    async def create(self, **kwargs: Any) -> Any:
        return await self.owner._create(kwargs)


class FakeChatClient:
    """``client.chat.completions.create(**kw)`` answering from ``replies``, one per request.

    Each reply is a list of text pieces to stream, or an exception to raise from
    ``create`` (e.g. :func:`connection_error`). ``requests`` keeps every streamed
    request's keyword arguments, ``streams`` every stream handed out. Requests without
    ``stream=True`` (a prompt-cache prefill) get an empty completion and are kept in
    ``unstreamed``; they use no reply.
    """

    def __init__(self, replies: Sequence[Sequence[str] | Exception], *, delay: float = 0.0):
        self._replies = list(replies)
        self._delay = delay
        self.base_url = "http://127.0.0.1:9/v1/"
        self.requests: list[dict[str, Any]] = []
        self.unstreamed: list[dict[str, Any]] = []
        self.streams: list[FakeChatStream] = []
        self.chat = SimpleNamespace(completions=_Completions(self))

    async def _create(self, kwargs: dict[str, Any]) -> Any:
        if not kwargs.get("stream"):
            self.unstreamed.append(kwargs)
            message = SimpleNamespace(role="assistant", content="")
            return SimpleNamespace(choices=[SimpleNamespace(index=0, message=message)])
        self.requests.append(kwargs)
        reply = self._replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        stream = FakeChatStream(reply, self._delay)
        self.streams.append(stream)
        return stream


# --- text to speech -------------------------------------------------------------------------


@dataclass
class FakeSynth:
    """Streams ``chunks`` pieces of audio per text, one every ``delay`` seconds.

    A text in ``fail`` raises :class:`EngineError` after that many chunks. ``events``
    records ``(what, text)`` with ``what`` one of ``start``, ``done``, ``failed``,
    ``closed`` (stopped early by the consumer or by cancellation).
    """

    chunks: int = 3
    delay: float = 0.0
    fail: Mapping[str, int] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)

    @property
    def sample_rate(self) -> int:
        return 24_000

    @staticmethod
    def chunk(text: str, index: int) -> bytes:
        """The audio of piece ``index`` of ``text``: its name, padded to whole samples."""
        data = f"{text}#{index}".encode()
        return data + b"\0" * (len(data) % 2)

    async def stream(self, text: str, *, first: bool = False) -> AsyncGenerator[bytes, None]:
        self.events.append(("start", text))
        outcome = "closed"
        try:
            for index in range(self.chunks):
                if self.fail.get(text) == index:
                    outcome = "failed"
                    raise EngineError(f"cannot say {text!r}")
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield self.chunk(text, index)
            outcome = "done"
        finally:
            self.events.append((outcome, text))
