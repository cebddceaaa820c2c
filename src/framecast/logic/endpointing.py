"""The energy gate: when the user starts speaking, pauses, resumes and stops.

A 20 ms frame is *voiced* when its RMS exceeds a threshold (DESIGN.md: "RMS > 600 =
voiced"). Single voiced frames are not speech: a click, a cough onset or a bump of the
mic is one or two loud frames. So a frame counts as speech (*active*) only when it is
voiced and at least ``start_ms`` of the last ``start_window_ms`` were voiced. That one
rule gives every transition:

- ``SpeechStarted``: the first active frame while quiet;
- ``SpeechPaused``: ``pause_ms`` since the last active frame ("a short silence signals
  maybe done": the cue to run the final STT and the end-of-turn model);
- ``SpeechResumed``: an active frame after a pause (the user was not done);
- ``SpeechStopped``: ``hangover_ms`` since the last active frame; the turn is over
  whatever the end-of-turn model said.

Dips shorter than ``pause_ms`` inside or between words produce no event, and a click
inside a pause neither resumes speech nor restarts the silence clock. Silence is
counted from the last active frame, but a pause or stop is declared only on an unvoiced
frame: a voiced one may be the onset of the next word, which becomes active only
``start_ms`` later (a click therefore delays the event by a frame).

Defaults come from LATENCY.md: 200 ms of gate silence before the end-of-turn check (the
"seq" schedule; inter-word gaps stay below it, and Smart Turn "scores >0.5 at most
mid-utterance word boundaries", so a shorter pause risks cutting the user off), and
1000 ms as the fallback that ends a turn the model keeps calling incomplete.

Each event carries ``sample``, its position in the input stream (the end of the frame
that caused it, counted in samples from the first one fed), and ``at``, the time of
that sample, so the caller can keep the events in order with the audio around them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto

import numpy as np
import numpy.typing as npt

from framecast.exceptions import ConfigError, ProtocolError

__all__ = [
    "EndpointEvent",
    "EnergyEndpointer",
    "SpeechPaused",
    "SpeechResumed",
    "SpeechStarted",
    "SpeechStopped",
    "rms_int16",
]


def rms_int16(pcm: bytes | npt.NDArray[np.int16]) -> float:
    """Root mean square of PCM16 samples (little-endian bytes or an int16 array), 0 if empty.

    Raises:
        ProtocolError: if ``pcm`` is bytes of odd length (a torn sample).
    """
    samples = pcm if isinstance(pcm, np.ndarray) else _samples(pcm)
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def _samples(pcm: bytes) -> npt.NDArray[np.int16]:
    if len(pcm) % 2:
        raise ProtocolError(f"PCM16 data must have an even byte count, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2")


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointEvent:
    """Something the gate noticed, at the end of the frame that showed it.

    Attributes:
        at: time of ``sample``, on the clock of the ``now`` passed to ``feed``.
        sample: position in the stream, in samples since the first one fed.
    """

    at: float
    sample: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted(EndpointEvent):
    """The user started speaking; ``onset`` is the sample where the voiced run began.

    Audio from ``onset`` (minus some pre-roll) belongs to the utterance: speech is only
    declared ``start_ms`` after it began.
    """

    onset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechPaused(EndpointEvent):
    """The user has been silent for ``silence_ms``: maybe done, check the end of turn."""

    silence_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechResumed(EndpointEvent):
    """The user spoke again after a pause: they were not done."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStopped(EndpointEvent):
    """The user has been silent for ``silence_ms`` (the hangover): the utterance is over."""

    silence_ms: float


class _State(Enum):
    QUIET = auto()
    SPEAKING = auto()
    PAUSED = auto()


class EnergyEndpointer:
    """Turn PCM16 mono audio into speech start / pause / resume / stop events.

    Feed audio in order with :meth:`feed`; chunks of any whole number of samples are
    re-framed into ``frame_ms`` frames, and a partial frame waits for the next chunk.

    Args:
        threshold: RMS above which a frame is voiced (int16 units; 600 is about -35 dBFS).
        frame_ms: analysis frame length.
        sample_rate: samples per second of the input.
        start_ms: voiced time within ``start_window_ms`` that makes speech.
        start_window_ms: how far back voiced frames count towards ``start_ms``.
        pause_ms: silence after speech that emits :class:`SpeechPaused`.
        hangover_ms: silence after speech that emits :class:`SpeechStopped`.

    Raises:
        ConfigError: if a frame is not a whole number of samples, or the durations are
            out of order (``0 < start_ms <= start_window_ms``, ``0 < pause_ms < hangover_ms``).
    """

    def __init__(
        self,
        *,
        threshold: float = 600.0,
        frame_ms: int = 20,
        sample_rate: int = 16_000,
        start_ms: int = 60,
        start_window_ms: int = 100,
        pause_ms: int = 200,
        hangover_ms: int = 1000,
    ) -> None:
        if frame_ms <= 0 or sample_rate <= 0 or (frame_ms * sample_rate) % 1000:
            raise ConfigError(f"{frame_ms} ms at {sample_rate} Hz is not a whole number of samples")
        if not 0 < start_ms <= start_window_ms:
            raise ConfigError(
                f"need 0 < start_ms <= start_window_ms, got {start_ms}, {start_window_ms}"
            )
        if not 0 < pause_ms < hangover_ms:
            raise ConfigError(f"need 0 < pause_ms < hangover_ms, got {pause_ms}, {hangover_ms}")
        self._threshold = threshold
        self._rate = sample_rate
        self._frame = frame_ms * sample_rate // 1000
        self._start_frames = -(-start_ms // frame_ms)  # ceil: 60 ms = 3 frames of 20 ms
        self._window_frames = max(self._start_frames, start_window_ms // frame_ms)
        self._pause = pause_ms * sample_rate / 1000
        self._hangover = hangover_ms * sample_rate / 1000
        self.reset()

    @property
    def speaking(self) -> bool:
        """True from :class:`SpeechStarted` until :class:`SpeechStopped` (pauses included)."""
        return self._state is not _State.QUIET

    @property
    def last_active_sample(self) -> int:
        """End of the last frame that counted as speech (samples since the first fed)."""
        return self._last_active

    def reset(self) -> None:
        """Forget all audio; the next sample fed is sample 0 again."""
        self._state = _State.QUIET
        self._pending = np.empty(0, dtype=np.int16)
        self._fed = 0  # samples fed so far, pending ones included
        self._framed = 0  # samples consumed as whole frames
        self._window: deque[bool] = deque(maxlen=self._window_frames)
        self._last_active = 0  # end of the last active frame

    def feed(
        self,
        pcm: bytes,
        now: float,
        *,
        speech: Callable[[npt.NDArray[np.int16]], npt.NDArray[np.bool_]] | None = None,
    ) -> list[EndpointEvent]:
        """Add the next chunk of audio and return the events it caused, in stream order.

        Args:
            pcm: PCM16 little-endian mono samples, any whole number of them.
            now: the time of the chunk's last sample; earlier frames are dated back
                from it at the sample rate.
            speech: optional second opinion, given the chunk's whole frames (one row
                each) and returning one bool per frame: a frame is voiced only when it
                is loud enough *and* this says speech (e.g. a VAD model, against noise).

        Raises:
            ProtocolError: if ``pcm`` has an odd number of bytes.
        """
        samples = np.concatenate((self._pending, _samples(pcm)))
        self._fed += len(pcm) // 2
        count = len(samples) // self._frame
        self._pending = samples[count * self._frame :]
        if not count:
            return []
        frames = samples[: count * self._frame].reshape(count, self._frame)
        voiced = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)) > self._threshold
        if speech is not None:
            voiced &= speech(frames)
        events: list[EndpointEvent] = []
        for frame_voiced in voiced:
            self._framed += self._frame
            event = self._step(bool(frame_voiced), self._at(now))
            if event is not None:
                events.append(event)
        return events

    def _at(self, now: float) -> float:
        """Time at the end of the frame just consumed."""
        return now - (self._fed - self._framed) / self._rate

    def _step(self, voiced: bool, at: float) -> EndpointEvent | None:
        """Advance the state machine by one frame ending at sample ``self._framed``."""
        end = self._framed
        self._window.append(voiced)
        active = voiced and sum(self._window) >= self._start_frames
        if active:
            self._last_active = end
            if self._state is _State.QUIET:
                self._state = _State.SPEAKING
                return SpeechStarted(at=at, sample=end, onset=self._onset())
            if self._state is _State.PAUSED:
                self._state = _State.SPEAKING
                return SpeechResumed(at=at, sample=end)
            return None
        if voiced:  # maybe the onset of the next word: decide on a quiet frame
            return None
        silence = end - self._last_active
        if self._state is _State.SPEAKING and silence >= self._pause:
            self._state = _State.PAUSED
            return SpeechPaused(at=at, sample=end, silence_ms=self._ms(silence))
        if self._state is _State.PAUSED and silence >= self._hangover:
            self._state = _State.QUIET
            return SpeechStopped(at=at, sample=end, silence_ms=self._ms(silence))
        return None

    def _onset(self) -> int:
        """Start of the earliest voiced frame in the window (the window ends at now)."""
        first = self._window.index(True)
        return self._framed - (len(self._window) - first) * self._frame

    def _ms(self, samples: int) -> float:
        return samples * 1000 / self._rate
