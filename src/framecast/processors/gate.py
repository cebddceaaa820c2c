"""EnergyGate: hears the user start and stop, keeps audio in order with those events.

A thin shell around :class:`framecast.logic.endpointing.EnergyEndpointer`. Each
chunk of input audio is split at the exact sample where an event happened, so
``UserStartedSpeaking`` sits between the audio before and after it.

The gate also opens new turns: when the user starts speaking after their
previous turn ended (``session.user_turn_ended``), it calls ``interrupt()`` —
which cancels any reply still in flight (barge-in) — before pushing the event.
Audio and events that follow carry the new turn.

A new turn must be *confirmed*: the speech has to last ``confirm_ms`` first, so a
cough, a door or a burst of echo does not cut the bot off. A burst that stops
sooner is ignored entirely. Nothing is lost by waiting: the STT and turn
detector keep a pre-roll of the audio before the start event.
"""

from __future__ import annotations

from dataclasses import replace

from framecast.frames import AudioIn, Frame, UserStartedSpeaking, UserStoppedSpeaking
from framecast.logic.endpointing import (
    EnergyEndpointer,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from framecast.processor import DOWN, Direction, Processor

__all__ = ["EnergyGate"]


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

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is not DOWN or not isinstance(frame, AudioIn):
            await self.push(frame, direction)
            return
        start = self._pushed
        events = self._endpointer.feed(frame.pcm, self.clock.now())
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
