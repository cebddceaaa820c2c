"""EnergyGate: hears the user start and stop, keeps audio in order with those events.

A thin shell around :class:`framecast.logic.endpointing.EnergyEndpointer`. Each
chunk of input audio is split at the exact sample where an event happened, so
``UserStartedSpeaking`` sits between the audio before and after it.

The gate also opens new turns: when the user starts speaking after their
previous turn ended (``session.user_turn_ended``), it calls ``interrupt()`` —
which cancels any reply still in flight (barge-in) — before pushing the event.
Audio and events that follow carry the new turn.

With a VAD (``vad=``, Silero), a frame counts as voice only when it is loud enough
*and* the model hears speech in it: a noisy room (a fan, a TV far away, typing)
then opens no turn and cuts no reply.

A new turn must be *confirmed*: the speech has to last ``confirm_ms`` first, so a
cough, a door or a burst of echo does not cut the bot off. A burst that stops
sooner is ignored entirely. Nothing is lost by waiting: the STT and turn
detector keep a pre-roll of the audio before the start event.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from framecast.frames import AudioIn, Frame, UserStartedSpeaking, UserStoppedSpeaking
from framecast.logic.endpointing import (
    EnergyEndpointer,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from framecast.processor import DOWN, Direction, Processor

__all__ = ["EnergyGate", "SpeechDetector"]


class _SpeechStream(Protocol):
    def feed(self, pcm: npt.ArrayLike) -> float: ...


class SpeechDetector(Protocol):
    """A voice-activity model: one stream of state per session (Silero's shape)."""

    def stream(self) -> _SpeechStream: ...


_VAD_WINDOW = 512  # samples per VAD call (Silero at 16 kHz)


class EnergyGate(Processor):
    """RMS energy gate with hangover (threshold 600 on PCM16 by default).

    Args:
        threshold: RMS (int16 units) above which a 20 ms frame is voiced.
        pause_ms: silence that means "maybe done" (``UserStoppedSpeaking``).
        start_ms: voiced time needed to declare speech (so clicks do not count).
        hangover_ms: silence after which the utterance is certainly over.
        barge_in: open a new turn (cancelling a reply in flight) when the user
            starts speaking after their turn ended.
        confirm_ms: how long speech must have been going on (from its onset to its
            latest voiced frame) before it opens a new turn (0 = at once).
        vad: an optional voice-activity model (e.g. ``framecast.engines.SileroVAD``),
            run on the loop (about 0.2 ms a call) for every 32 ms of audio.
        vad_threshold: the model's speech probability that counts as speech.
    """

    def __init__(
        self,
        *,
        threshold: float = 600.0,
        pause_ms: int = 200,
        start_ms: int = 60,
        hangover_ms: int = 1000,
        barge_in: bool = True,
        confirm_ms: int = 200,
        vad: SpeechDetector | None = None,
        vad_threshold: float = 0.5,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._endpointer = EnergyEndpointer(
            threshold=threshold, pause_ms=pause_ms, start_ms=start_ms, hangover_ms=hangover_ms
        )
        self._barge_in = barge_in
        self._confirm = confirm_ms * 16  # in samples at 16 kHz
        self._pushed = 0  # samples of input audio pushed on so far
        self._candidate: tuple[int, float] | None = None  # (onset sample, time) of a new turn
        self._vad = vad.stream() if vad is not None else None
        self._vad_threshold = vad_threshold
        self._vad_pending = np.empty(0, dtype=np.int16)
        self._vad_speech = False  # the model's latest verdict

    def _speech(self, frames: npt.NDArray[np.int16]) -> npt.NDArray[np.bool_]:
        """Per 20 ms frame: does the VAD hear speech (its latest 32 ms verdict)?"""
        assert self._vad is not None
        verdicts = np.empty(len(frames), dtype=bool)
        for i, frame in enumerate(frames):
            self._vad_pending = np.concatenate((self._vad_pending, frame))
            while len(self._vad_pending) >= _VAD_WINDOW:
                window, self._vad_pending = np.split(self._vad_pending, [_VAD_WINDOW])
                self._vad_speech = self._vad.feed(window) >= self._vad_threshold
            verdicts[i] = self._vad_speech
        return verdicts

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is not DOWN or not isinstance(frame, AudioIn):
            await self.push(frame, direction)
            return
        start = self._pushed
        speech = self._speech if self._vad is not None else None
        events = self._endpointer.feed(frame.pcm, self.clock.now(), speech=speech)
        offset = 0  # bytes of this chunk pushed so far
        for event in events:
            cut = min(len(frame.pcm), max(offset, (event.sample - start) * 2))
            if cut > offset:
                await self._push_audio(frame, frame.pcm[offset:cut])
                offset = cut
            if isinstance(event, SpeechStarted | SpeechResumed):
                session = self.session
                if self._barge_in and session.user_turn_ended:
                    onset = event.onset if isinstance(event, SpeechStarted) else event.sample
                    self._candidate = (onset, event.at)
                else:
                    session.user_turn_ended = False
                    await self.push(UserStartedSpeaking(turn=session.turn, ts=event.at))
            elif isinstance(event, SpeechPaused):
                if self._candidate is not None:
                    self._candidate = None  # too short to be a turn: a noise, ignore it
                    continue
                turn = self.session.turn
                self.session.timeline(turn).move(
                    "user_speech_end", event.at - event.silence_ms / 1000.0
                )
                await self.push(
                    UserStoppedSpeaking(turn=turn, ts=event.at, silence_ms=event.silence_ms)
                )
        if offset < len(frame.pcm):
            await self._push_audio(frame, frame.pcm[offset:])
        self._pushed = start + len(frame.pcm) // 2
        candidate = self._candidate
        if (
            candidate is not None
            and self._endpointer.last_active_sample - candidate[0] >= self._confirm
        ):
            self._candidate = None
            turn = await self.interrupt()
            await self.push(UserStartedSpeaking(turn=turn, ts=candidate[1]))

    async def _push_audio(self, frame: AudioIn, pcm: bytes) -> None:
        turn = self.session.turn
        if pcm is frame.pcm and frame.turn == turn:
            await self.push(frame)
        else:
            await self.push(replace(frame, pcm=pcm, turn=turn))
