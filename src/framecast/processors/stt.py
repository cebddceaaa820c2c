"""WhisperSTT: streaming partial transcripts while the user speaks, a final one at each pause.

How it decodes (never the whole growing buffer again and again):

- The audio of the current speech segment is kept from the moment the gate heard
  speech start (plus a short pre-roll). Partials decode only its *uncommitted*
  tail: once that tail grows past ``commit_after_s``, every Whisper segment but the
  last is committed — its text is fixed and its audio dropped — and later decodes
  start where it ended, with the committed text as the prompt.
- Partials run one at a time, at most every ``partial_interval_s`` of new audio,
  in the shared worker pool; audio keeps flowing meanwhile. A local-agreement
  policy (:class:`~framecast.logic.stable_prefix.StablePrefix`) keeps the shown
  words from flickering.
- When the gate reports a pause (``UserStoppedSpeaking``) the final decode of the
  segment starts at once and its result is pushed as ``Transcript(final=True)``.
  Exactly one final follows every pause — empty if nothing was said or the decode
  failed — so the stages after it can count on it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

import numpy as np

from framecast.engines._pcm import int16_bytes_to_float32
from framecast.frames import (
    AudioIn,
    Frame,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from framecast.logic.stable_prefix import StablePrefix
from framecast.processor import DOWN, Direction, Processor
from framecast.workers import BACKGROUND, URGENT, WorkerPool

__all__ = ["STTEngine", "STTResult", "WhisperSTT"]

_RATE = 16_000


class STTResult(Protocol):
    """What a transcription returns (see ``framecast.engines.whisper.Transcription``)."""

    @property
    def text(self) -> str: ...

    @property
    def segments(self) -> tuple[object, ...]: ...


class STTEngine(Protocol):
    """A blocking speech-to-text model (called from worker threads)."""

    def transcribe(self, pcm: np.ndarray, *, prompt: str | None = None) -> STTResult: ...


class WhisperSTT(Processor):
    """Streaming speech-to-text over a shared engine.

    Args:
        engine: the model (shared by all sessions).
        pool: worker threads for ``engine`` (shared; bounds concurrent decodes).
        partial_interval_s: new audio needed before the next partial decode.
        commit_after_s: uncommitted audio beyond which finished segments are committed.
        preroll_s: audio kept from before the speech start (onsets are quiet, and
            the gate confirms a new turn only after ``confirm_ms`` of speech).
        partials: emit partial transcripts at all.
    """

    def __init__(
        self,
        engine: STTEngine,
        pool: WorkerPool,
        *,
        partial_interval_s: float = 0.6,
        commit_after_s: float = 6.0,
        preroll_s: float = 0.5,
        partials: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._engine = engine
        self._pool = pool
        self._partial_every = int(partial_interval_s * _RATE)
        self._commit_after = int(commit_after_s * _RATE)
        self._partials = partials
        self._preroll: deque[bytes] = deque()
        self._preroll_bytes = 0
        self._preroll_limit = int(preroll_s * _RATE) * 2
        self._stable = StablePrefix()
        self._reset_segment()

    def _reset_segment(self) -> None:
        self._segment = getattr(self, "_segment", 0) + 1  # identifies the segment a decode is for
        self._speaking = False
        self._audio = bytearray()  # uncommitted audio of the segment, PCM16
        self._committed = ""  # text of committed audio of the segment
        self._since_partial = 0
        self._partial_task: asyncio.Task[None] | None = None
        self._stable.reset()

    def on_interruption(self, turn: int) -> None:
        # A new turn: the old segment is void. The pre-roll is kept: it holds the
        # start of the speech that opened this very turn.
        self._reset_segment()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWN:
            if isinstance(frame, AudioIn):
                self._hear(frame)
            elif isinstance(frame, UserStartedSpeaking):
                self._start_segment()
            elif isinstance(frame, UserStoppedSpeaking) and self._speaking:
                await self._finish_segment(frame.turn)
        await self.push(frame, direction)

    def _hear(self, frame: AudioIn) -> None:
        if not self._speaking:
            self._preroll.append(frame.pcm)
            self._preroll_bytes += len(frame.pcm)
            while self._preroll_bytes - len(self._preroll[0]) >= self._preroll_limit:
                self._preroll_bytes -= len(self._preroll.popleft())
            return
        self._audio += frame.pcm
        self._since_partial += len(frame.pcm) // 2
        if (
            self._partials
            and self._since_partial >= self._partial_every
            and (self._partial_task is None or self._partial_task.done())
            and not self._pool.saturated  # under load, partials are the first thing to go
        ):
            self._since_partial = 0
            # The snapshot is taken now, not when the task first runs: by then the pause
            # may already have ended the segment and emptied the buffer.
            snapshot = (bytes(self._audio), self._committed, self._segment)
            self._partial_task = self.create_task(
                self._partial(frame.turn, *snapshot), turn=frame.turn
            )

    def _start_segment(self) -> None:
        if self._speaking:
            return
        self._reset_segment()
        self._speaking = True
        self._audio = bytearray(b"".join(self._preroll))
        self._preroll.clear()
        self._preroll_bytes = 0

    async def _finish_segment(self, turn: int) -> None:
        audio, committed, partial = bytes(self._audio), self._committed, self._partial_task
        self._reset_segment()
        self.create_task(self._final(turn, audio, committed, partial), turn=turn)

    async def _partial(self, turn: int, audio: bytes, committed: str, segment: int) -> None:
        result = await self._pool.call(
            BACKGROUND,
            self._engine.transcribe,
            int16_bytes_to_float32(audio),
            prompt=committed or None,
        )
        if segment != self._segment or committed != self._committed:
            return  # the segment ended, or was committed further, meanwhile
        shown = self._stable.update(self._maybe_commit(result, len(audio) // 2))
        text = _join(self._committed, shown.text)
        if text:
            await self.push(Transcript(text=text, final=False, turn=turn, ts=self.clock.now()))

    def _maybe_commit(self, result: STTResult, decoded: int) -> str:
        """Commit all but the last segment once ``decoded`` samples are many.

        Returns the text of the decode that is still uncommitted.
        """
        segments = result.segments
        if decoded < self._commit_after or len(segments) < 2:
            return result.text
        done = segments[:-1]
        end = int(float(getattr(done[-1], "end", 0.0)) * _RATE) * 2
        if end <= 0:
            return result.text
        self._committed = _join(self._committed, " ".join(getattr(s, "text", "") for s in done))
        del self._audio[:end]
        self._stable.reset()
        return str(getattr(segments[-1], "text", ""))

    async def _final(
        self, turn: int, audio: bytes, committed: str, partial: asyncio.Task[None] | None
    ) -> None:
        text = committed
        try:
            if partial is not None and not partial.done():
                await asyncio.wait({partial})  # one decode at a time; it is nearly done
            result = await self._pool.call(
                URGENT,
                self._engine.transcribe,
                int16_bytes_to_float32(audio),
                prompt=committed or None,
            )
            text = _join(committed, result.text)
        finally:
            # Exactly one final per pause, even when the decode failed.
            self.session.timeline(turn).move("transcript_final", self.clock.now())
            await self.push(Transcript(text=text, final=True, turn=turn, ts=self.clock.now()))


def _join(left: str, right: str) -> str:
    return f"{left} {right}".strip() if left and right else (left or right).strip()
