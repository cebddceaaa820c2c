"""Frames: the small typed values that flow through a pipeline.

A frame's *kind* is its base class, and routing looks only at the kind:

- :class:`SystemFrame` — lifecycle and errors (start, end, cancel, interruption,
  error). Never dropped as stale: they concern the pipeline, not one reply.
- :class:`DataFrame` — audio, transcripts, LLM text, sentences.
- :class:`ControlFrame` — events about the conversation (user/bot started or
  stopped speaking, end of turn, emotion tag, metrics, reply boundaries).

Data and control frames are *in-band*: input audio travels the same path as the
speech events around it, so it can never overtake them or fall behind them.

Every frame carries ``turn`` (the conversation turn it belongs to; see
:class:`framecast.session.Session`) and ``ts`` (a monotonic timestamp in seconds).
A frame whose turn is older than the session's current turn is stale: it is
dropped at the next hop, so nothing of an interrupted reply reaches the client.

Frames are frozen, slotted dataclasses with keyword-only fields: cheap to create,
safe to share between branches, impossible to mutate behind a processor's back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AudioIn",
    "AudioOut",
    "BotStartedSpeaking",
    "BotStoppedSpeaking",
    "CancelFrame",
    "ControlFrame",
    "DataFrame",
    "EmotionTag",
    "EndFrame",
    "EndOfTurn",
    "ErrorFrame",
    "Frame",
    "InterruptionFrame",
    "LLMMessages",
    "LLMText",
    "MetricsFrame",
    "PlaybackInterrupted",
    "ReplyEnded",
    "ReplyStarted",
    "Sentence",
    "StartFrame",
    "SystemFrame",
    "TextIn",
    "Transcript",
    "UserStartedSpeaking",
    "UserStoppedSpeaking",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """Base of all frames.

    Attributes:
        turn: the conversation turn this frame belongs to.
        ts: monotonic timestamp (seconds). Processors that care about timing pass
            ``ts=self.clock.now()`` so virtual-clock tests stay deterministic.
    """

    turn: int = 0
    ts: float = field(default_factory=time.monotonic)


# --- kinds -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemFrame(Frame):
    """Acts on the pipeline itself; never dropped as stale."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataFrame(Frame):
    """Payload: audio, text, transcripts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlFrame(Frame):
    """An event about the conversation, in-band with the data around it."""


# --- system ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StartFrame(SystemFrame):
    """First frame through a pipeline once every processor has started."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndFrame(SystemFrame):
    """Graceful end: processors flush what they hold, then the pipeline stops."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelFrame(SystemFrame):
    """Immediate stop: nothing is flushed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InterruptionFrame(SystemFrame):
    """Barge-in: ``turn`` is the new current turn; everything older is void.

    The session has already cancelled older work when this frame is pushed; it
    travels downstream so processors (and the output transport, which tells the
    client ``audio_cancel``) see the cut at its place in the stream.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorFrame(SystemFrame):
    """A failure, pushed upstream from the processor that failed.

    Attributes:
        message: what went wrong, for people.
        code: short machine-readable code (``error`` event ``code`` field).
        processor: name of the processor that failed.
        fatal: the pipeline cannot go on.
        retryable: trying again may help.
    """

    message: str
    code: str = "error"
    processor: str = ""
    fatal: bool = False
    retryable: bool = False


# --- data ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioIn(DataFrame):
    """Microphone audio: PCM16 little-endian, mono unless ``channels`` says otherwise."""

    pcm: bytes
    sample_rate: int = 16000
    channels: int = 1

    def __repr__(self) -> str:
        return f"AudioIn(turn={self.turn}, {len(self.pcm)} bytes @ {self.sample_rate} Hz)"

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.pcm) / (2 * self.channels * self.sample_rate)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioOut(DataFrame):
    """Synthesized speech: PCM16 little-endian mono at ``sample_rate``.

    ``text`` is set on the first chunk of each spoken sentence (the text that chunk
    starts to say), so the output can tell what the user actually heard.
    """

    pcm: bytes
    sample_rate: int = 24000
    text: str = ""

    def __repr__(self) -> str:
        return f"AudioOut(turn={self.turn}, {len(self.pcm)} bytes @ {self.sample_rate} Hz)"

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.pcm) / (2 * self.sample_rate)


@dataclass(frozen=True, slots=True, kw_only=True)
class TextIn(DataFrame):
    """A user utterance given as text (typed, or a test): skips STT and turn detection."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript(DataFrame):
    """User speech as text. Partials may change; a final one is the utterance."""

    text: str
    final: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMMessages(DataFrame):
    """A complete chat context (OpenAI message dicts) to run the LLM on."""

    messages: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMText(DataFrame):
    """A piece of the assistant's reply as the LLM streams it."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Sentence(DataFrame):
    """A speakable chunk of the reply (a sentence, or an eager first clause)."""

    text: str


# --- control -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UserStartedSpeaking(ControlFrame):
    """The input gate heard speech begin (or resume after a pause)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserStoppedSpeaking(ControlFrame):
    """The input gate heard ``silence_ms`` of quiet: the user *may* be done."""

    silence_ms: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfTurn(ControlFrame):
    """The user has finished their turn; ``probability`` is the detector's confidence."""

    probability: float = 1.0
    reason: str = "model"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyStarted(ControlFrame):
    """The assistant's reply for ``turn`` begins (LLM request sent)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyEnded(ControlFrame):
    """The assistant's reply text for ``turn`` is complete."""

    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BotStartedSpeaking(ControlFrame):
    """Reply audio for ``turn`` starts; ``sample_rate`` of the ``AudioOut`` that follows."""

    sample_rate: int = 24000


@dataclass(frozen=True, slots=True, kw_only=True)
class BotStoppedSpeaking(ControlFrame):
    """All reply audio for ``turn`` has been produced."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackInterrupted(ControlFrame):
    """Sent upstream by the output when a reply is cut: what the user heard of it.

    ``turn`` is the new turn (so the frame is not stale); ``reply_turn`` the cut one.
    """

    reply_turn: int
    heard_text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EmotionTag(ControlFrame):
    """A soft hint about how the user sounded (label from a small documented set)."""

    label: str
    score: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsFrame(ControlFrame):
    """A turn's latency timeline: stage name -> milliseconds."""

    values: Mapping[str, float]
