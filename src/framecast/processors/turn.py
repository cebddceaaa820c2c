"""SmartTurn: decides whether a pause ends the user's turn.

When the gate reports a pause, Smart Turn v3 scores the last 8 s of the turn's
audio: "finished" ends the turn at once; "pausing" waits, scoring again every
``recheck_s`` as the silence grows, and gives up waiting after ``max_wait_s`` of
silence (so a turn always ends). At each re-check the final transcript is a second
opinion: Smart Turn was trained on conversation and rarely calls read-out prose
finished, but when Whisper has closed the sentence (``.``, ``!``, ``?``) and the user
has been silent for a whole re-check period — longer than a thinking pause
mid-sentence — the turn ends there rather than at the fallback. Speech resuming cancels the wait. In
``mode="silence"`` the model is not used: the turn ends after ``silence_s`` of
silence, as the reference system did.

Ending a turn pushes ``EndOfTurn`` and tells the session (``end_user_turn``), so
the user's next speech opens a new turn — a barge-in if a reply is under way.
"""

from __future__ import annotations

import asyncio
from typing import Literal, Protocol

import numpy as np
from loguru import logger

from framecast.engines._pcm import int16_bytes_to_float32
from framecast.exceptions import ConfigError
from framecast.frames import (
    AudioIn,
    EndOfTurn,
    Frame,
    TextIn,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from framecast.processor import DOWN, Direction, Processor
from framecast.workers import URGENT, WorkerPool

__all__ = ["SmartTurn", "TurnEngine"]

_RATE = 16_000
_WINDOW_BYTES = 8 * _RATE * 2
_PREROLL_BYTES = _RATE // 2 * 2  # 0.5 s before the start event belongs to the turn


class TurnPredictionLike(Protocol):
    @property
    def probability(self) -> float: ...

    @property
    def complete(self) -> bool: ...


class TurnEngine(Protocol):
    """A blocking end-of-turn model (called from worker threads)."""

    def predict(self, pcm: np.ndarray) -> TurnPredictionLike: ...


class SmartTurn(Processor):
    """Semantic end-of-turn detection with a silence fallback.

    Args:
        engine: the model; may be ``None`` in silence mode.
        pool: worker threads for the engine (shared).
        mode: ``"smart"`` (model + fallback) or ``"silence"`` (fixed silence only).
        max_wait_s: in smart mode, silence after which the turn ends regardless.
        recheck_s: in smart mode, how often to score again while the silence grows.
            Long on purpose: a person pausing 0.6-1 s mid-sentence must not be cut off
            by a second look that happens to score "complete".
        silence_s: in silence mode, the silence that ends a turn.
    """

    def __init__(
        self,
        engine: TurnEngine | None,
        pool: WorkerPool | None,
        *,
        mode: Literal["smart", "silence"] = "smart",
        max_wait_s: float = 3.0,
        recheck_s: float = 1.0,
        silence_s: float = 0.8,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if mode == "smart" and (engine is None or pool is None):
            raise ConfigError("SmartTurn in smart mode needs an engine and a worker pool")
        if mode not in ("smart", "silence"):
            raise ConfigError(f"turn detection mode must be 'smart' or 'silence', not {mode!r}")
        self._engine = engine
        self._pool = pool
        self._mode = mode
        self._max_wait = max_wait_s
        self._recheck = recheck_s
        self._silence = silence_s
        self._audio = bytearray()  # last 8 s of this turn's audio
        self._in_turn = False
        self._waiting: asyncio.Task[None] | None = None
        self._last_final = ""  # the latest final transcript of this turn

    def on_interruption(self, turn: int) -> None:
        # Keep the audio: its recent part is the pre-roll of the turn now starting.
        self._in_turn = False
        self._waiting = None  # owned by the old turn: already cancelled
        self._last_final = ""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWN:
            if isinstance(frame, AudioIn):
                self._audio += frame.pcm
                keep = _WINDOW_BYTES if self._in_turn else _PREROLL_BYTES
                if len(self._audio) > 2 * keep:
                    del self._audio[: len(self._audio) - keep]
            elif isinstance(frame, UserStartedSpeaking):
                if not self._in_turn:
                    del self._audio[: max(0, len(self._audio) - _PREROLL_BYTES)]
                self._in_turn = True
                await self._stop_waiting()
            elif isinstance(frame, UserStoppedSpeaking) and self._in_turn:
                await self._stop_waiting()
                self._waiting = self.create_task(
                    self._decide(frame.turn, frame.silence_ms / 1000.0), turn=frame.turn
                )
            elif isinstance(frame, Transcript) and frame.final:
                self._last_final = frame.text.strip()
            elif isinstance(frame, TextIn):
                self.session.end_user_turn()  # a typed message is a whole turn
        await self.push(frame, direction)

    async def _stop_waiting(self) -> None:
        task, self._waiting = self._waiting, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def _decide(self, turn: int, silent_for: float) -> None:
        if self._mode == "silence":
            await self.clock.sleep(max(0.0, self._silence - silent_for))
            await self._end(turn, 1.0, "silence")
            return
        assert self._engine is not None and self._pool is not None
        waited = silent_for
        while True:
            audio = int16_bytes_to_float32(bytes(self._audio[-_WINDOW_BYTES:]))
            prediction = await self._pool.call(URGENT, self._engine.predict, audio)
            logger.debug(
                "{}: turn {} p={:.2f} after {:.2f} s of silence ({:.1f} s of audio)",
                self.name, turn, prediction.probability, waited, audio.size / _RATE,
            )  # fmt: skip
            if prediction.complete:
                await self._end(turn, prediction.probability, "model")
                return
            if waited > silent_for and self._last_final.endswith((".", "!", "?")):
                await self._end(turn, prediction.probability, "transcript")
                return
            step = min(self._recheck, self._max_wait - waited)
            if step <= 0:
                await self._end(turn, prediction.probability, "timeout")
                return
            await self.clock.sleep(step)
            waited += step

    async def _end(self, turn: int, probability: float, reason: str) -> None:
        self._waiting = None
        self._in_turn = False
        self._last_final = ""
        self.session.end_user_turn()
        self.session.mark(turn, "end_of_turn")
        await self.push(
            EndOfTurn(turn=turn, probability=probability, reason=reason, ts=self.clock.now())
        )
