"""Text-to-speech processors: KokoroTTS (local, int8 ONNX) and ElevenLabsTTS (remote).

Both share :class:`TTSProcessor`: sentences of a reply are queued (bounded) to one
synthesis task per turn, which streams each sentence's audio as it is produced:
``BotStartedSpeaking`` before the first chunk, ``AudioOut`` chunks (the first of each
sentence carries its text), then ``BotStoppedSpeaking`` and the reply's
``ReplyEnded`` once the last sentence is spoken. Interruption cancels the task; a
local engine running in a worker thread stops at its next chunk, a remote stream
is closed. A sentence that fails to synthesize is reported and skipped; the reply
goes on with the next one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from typing import Protocol

from framecast.boundary import BoundedChannel
from framecast.exceptions import ConfigError
from framecast.frames import (
    AudioOut,
    BotStartedSpeaking,
    BotStoppedSpeaking,
    Frame,
    ReplyEnded,
    Sentence,
)
from framecast.processor import DOWN, Direction, Processor
from framecast.workers import NORMAL, URGENT, WorkerPool

__all__ = ["ElevenLabsTTS", "KokoroTTS", "SpeechSynth", "TTSProcessor"]


class SpeechSynth(Protocol):
    """Streams PCM16 mono audio for a text.

    ``first`` is true for a reply's first chunk of text: someone is waiting for it, so a
    shared engine should serve it before other sessions' later sentences.
    """

    @property
    def sample_rate(self) -> int: ...

    def stream(self, text: str, *, first: bool = False) -> AsyncGenerator[bytes, None]: ...


class TTSProcessor(Processor):
    """Speaks ``Sentence`` frames with a :class:`SpeechSynth`.

    Args:
        synth: the speech engine adapter.
        max_pending: sentences that may wait for synthesis (backpressure on the LLM).
    """

    def __init__(
        self, synth: SpeechSynth, *, max_pending: int = 16, name: str | None = None
    ) -> None:
        super().__init__(name=name)
        self._synth = synth
        self._max_pending = max_pending
        self._channel: BoundedChannel[Frame] | None = None
        self._channel_turn = -1

    def on_interruption(self, turn: int) -> None:
        self._channel = None  # its task belonged to the old turn and is cancelled

    def set_voice(self, voice: str) -> None:
        """Speak the following sentences with ``voice``.

        Raises:
            ConfigError: if the engine has no voice setting.
        """
        setter = getattr(self._synth, "set_voice", None)
        if setter is None:
            raise ConfigError(f"{self.name}: this engine's voice cannot be changed per session")
        setter(voice)

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is DOWN and isinstance(frame, Sentence | ReplyEnded):
            if (
                isinstance(frame, ReplyEnded)
                and self._channel_for(frame.turn, create=False) is None
            ):
                await self.push(frame, direction)  # a reply with nothing to say
                return
            channel = self._channel_for(frame.turn, create=True)
            assert channel is not None
            await channel.put(frame)
            return
        await self.push(frame, direction)

    def _channel_for(self, turn: int, *, create: bool) -> BoundedChannel[Frame] | None:
        if self._channel is not None and self._channel_turn == turn:
            return self._channel
        if not create:
            return None
        self._channel = BoundedChannel(self._max_pending)
        self._channel_turn = turn
        self.create_task(self._speak(turn, self._channel), turn=turn)
        return self._channel

    async def _speak(self, turn: int, channel: BoundedChannel[Frame]) -> None:
        started = False
        rate = self._synth.sample_rate
        while True:
            frame = await channel.get()
            if isinstance(frame, ReplyEnded):
                if self._channel is channel:
                    self._channel = None
                if started:
                    await self.push(BotStoppedSpeaking(turn=turn, ts=self.clock.now()))
                await self.push(frame)
                return
            assert isinstance(frame, Sentence)
            first_chunk = True
            try:
                async with aclosing(self._synth.stream(frame.text, first=not started)) as chunks:
                    async for pcm in chunks:
                        if not pcm:
                            continue
                        if not started:
                            started = True
                            self.session.mark(turn, "tts_first_audio")
                            await self.push(
                                BotStartedSpeaking(turn=turn, sample_rate=rate, ts=self.clock.now())
                            )
                        text = frame.text if first_chunk else ""
                        first_chunk = False
                        await self.push(
                            AudioOut(
                                pcm=pcm, sample_rate=rate, text=text, turn=turn, ts=self.clock.now()
                            )
                        )
            except Exception as exc:  # noqa: BLE001 - one bad sentence must not end the reply
                await self._report(exc, turn)


class _KokoroSynth:
    """Adapter: a blocking Kokoro engine pulled through a worker pool."""

    def __init__(self, engine: _KokoroEngine, pool: WorkerPool, voice: str, speed: float) -> None:
        self._engine = engine
        self._pool = pool
        self._voice = voice
        self._speed = speed

    @property
    def sample_rate(self) -> int:
        return self._engine.sample_rate

    def set_voice(self, voice: str) -> None:
        self._voice = voice

    async def stream(self, text: str, *, first: bool = False) -> AsyncGenerator[bytes, None]:
        def make() -> Iterator[bytes]:
            return self._engine.synthesize(text, voice=self._voice, speed=self._speed)

        priority = URGENT if first else NORMAL
        async with aclosing(self._pool.iterate(make, priority=priority)) as chunks:
            async for pcm in chunks:
                yield pcm


class _KokoroEngine(Protocol):
    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str, *, voice: str = ..., speed: float = ...) -> Iterator[bytes]: ...


class KokoroTTS(TTSProcessor):
    """Kokoro-82M (int8 ONNX) on the local CPU: 24 kHz PCM16.

    Args:
        engine: a shared :class:`framecast.engines.kokoro.KokoroEngine`.
        pool: its worker threads (shared by all sessions).
        voice: a Kokoro voice name, e.g. ``af_heart``.
        speed: 0.5-2.0.
    """

    def __init__(
        self,
        engine: _KokoroEngine,
        pool: WorkerPool,
        *,
        voice: str = "af_heart",
        speed: float = 1.0,
        max_pending: int = 16,
        name: str | None = None,
    ) -> None:
        super().__init__(
            _KokoroSynth(engine, pool, voice, speed), max_pending=max_pending, name=name
        )


class _RemoteEngine(Protocol):
    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str) -> AsyncGenerator[bytes, None]: ...


class _StreamingSynth:
    """Adapter for engines that already stream asynchronously (ElevenLabs, remote TTS)."""

    def __init__(self, engine: _RemoteEngine) -> None:
        self._engine = engine

    @property
    def sample_rate(self) -> int:
        return self._engine.sample_rate

    async def stream(self, text: str, *, first: bool = False) -> AsyncGenerator[bytes, None]:
        async with aclosing(self._engine.synthesize(text)) as chunks:
            async for pcm in chunks:
                yield pcm


class ElevenLabsTTS(TTSProcessor):
    """ElevenLabs streaming TTS (raw PCM), behind the same interface as Kokoro.

    Args:
        engine: a :class:`framecast.engines.elevenlabs.ElevenLabsEngine` (or any engine
            with ``sample_rate`` and an async ``synthesize(text)``, such as the remote
            TTS service client).
    """

    def __init__(
        self, engine: _RemoteEngine, *, max_pending: int = 16, name: str | None = None
    ) -> None:
        super().__init__(_StreamingSynth(engine), max_pending=max_pending, name=name)
