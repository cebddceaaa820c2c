"""EmotionTagger: a soft hint of how the user sounded, for the LLM.

It keeps the audio of the user's speech in the current turn and, when a final
transcript arrives, asks an :class:`EmotionBackend` (default: prosody + lexical
sentiment, see :mod:`framecast.engines.emotion` for what it can and cannot tell)
for a label. The ``EmotionTag`` is pushed *just before* the transcript, so the
LLM stage has it when the turn's text arrives. A failing backend costs the hint,
never the transcript.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from framecast.engines._pcm import int16_bytes_to_float32
from framecast.frames import (
    AudioIn,
    EmotionTag,
    Frame,
    TextIn,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from framecast.processor import DOWN, Direction, Processor
from framecast.workers import WorkerPool

__all__ = ["EmotionBackend", "EmotionTagger"]

_MAX_BYTES = 15 * 16_000 * 2  # the last 15 s of speech are plenty for prosody
_PREROLL_BYTES = 16_000  # 0.5 s: the gate declares a turn after its speech began


class EmotionLike(Protocol):
    @property
    def label(self) -> str: ...

    @property
    def score(self) -> float: ...


class EmotionBackend(Protocol):
    """Classifies one utterance: float32 16 kHz audio plus its transcript."""

    def classify(self, pcm_f32_16k: np.ndarray, transcript: str) -> EmotionLike: ...


class EmotionTagger(Processor):
    """Tags each final transcript (and typed message) with an emotion label.

    Args:
        backend: the classifier (shared; must be thread-safe for concurrent calls).
        pool: worker threads to run it in, so the loop never blocks.
    """

    def __init__(
        self, backend: EmotionBackend, pool: WorkerPool, *, name: str | None = None
    ) -> None:
        super().__init__(name=name)
        self._backend = backend
        self._pool = pool
        self._audio = bytearray()
        self._utterance = b""  # the speech up to the last pause, for the final's tag
        self._listening = False

    def on_interruption(self, turn: int) -> None:
        # Keep the audio: its recent part is the pre-roll of the turn now starting.
        self._listening = False

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWN:
            if isinstance(frame, AudioIn):
                self._audio += frame.pcm
                keep = _MAX_BYTES if self._listening else _PREROLL_BYTES
                if len(self._audio) > keep:
                    del self._audio[: len(self._audio) - keep]
            elif isinstance(frame, UserStartedSpeaking):
                self._listening = True
            elif isinstance(frame, UserStoppedSpeaking):
                self._listening = False
                self._utterance = bytes(self._audio)
            elif isinstance(frame, Transcript) and frame.final and frame.text:
                await self._tag(frame.turn, self._utterance, frame.text)
            elif isinstance(frame, TextIn):
                await self._tag(frame.turn, b"", frame.text)
        await self.push(frame, direction)

    async def _tag(self, turn: int, pcm: bytes, text: str) -> None:
        audio = int16_bytes_to_float32(pcm)
        try:
            emotion = await self._pool.run(self._backend.classify, audio, text)
        except Exception as exc:  # noqa: BLE001 - the hint is optional; report and go on
            await self._report(exc, turn)
            return
        await self.push(
            EmotionTag(
                label=emotion.label, score=float(emotion.score), turn=turn, ts=self.clock.now()
            )
        )
