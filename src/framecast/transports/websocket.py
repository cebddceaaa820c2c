"""One ``/ws/audio`` client connection as the two ends of a pipeline.

:meth:`WebSocketTransport.input` is the first processor: the reader loop
(:meth:`WebSocketTransport.run`) decodes each message and pushes it in, and error
frames travelling up end there as ``error`` events. :meth:`WebSocketTransport.output`
is the last processor: it turns frames into protocol events and binary audio.

The output is the *final gate* for barge-in: it checks a frame's turn against the
session's turn synchronously, immediately before writing, so not one byte of an
interrupted reply is written after the interruption. On interruption it tells the
client ``audio_cancel`` for a reply that may still be playing, and reports upstream
how much of the reply the user heard (``PlaybackInterrupted``), estimated from the
time since its first audio left (the client plays in real time).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from loguru import logger

from framecast.clock import Clock
from framecast.exceptions import ProtocolError
from framecast.frames import (
    AudioIn,
    AudioOut,
    BotStartedSpeaking,
    BotStoppedSpeaking,
    EmotionTag,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMText,
    PlaybackInterrupted,
    ReplyEnded,
    ReplyStarted,
    TextIn,
    Transcript,
)
from framecast.metrics import ERRORS, TURNS, observe_timeline
from framecast.processor import UP, Direction, Processor
from framecast.session import Session
from framecast.transports.protocol import AudioChunk, Decoder, Hello, UserText, event

__all__ = ["Connection", "WebSocketTransport"]

#: Playback may lag the last byte sent by this much (client buffering, network).
_PLAYBACK_SLACK_S = 0.5


class Connection(Protocol):
    """The part of a WebSocket connection the transport uses (websockets' fits)."""

    async def send(self, message: str | bytes) -> None: ...

    def __aiter__(self) -> AsyncIterator[str | bytes]: ...


class _RateLimit:
    """Token bucket on incoming messages: a flood of tiny frames cannot hog the loop."""

    def __init__(self, per_second: float, burst: float) -> None:
        self._rate = per_second
        self._burst = burst
        self._tokens = burst
        self._last: float | None = None

    def admit(self, now: float) -> bool:
        if self._last is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class _Reply:
    """What the output sent of one reply's audio."""

    turn: int
    sample_rate: int
    open: bool = True
    sent_s: float = 0.0
    first_at: float | None = None
    cues: list[tuple[float, str]] = field(default_factory=list)  # (offset s, sentence)

    def heard_text(self, now: float) -> str:
        """The reply text the user has heard by ``now``, cut proportionally mid-sentence."""
        if self.first_at is None:
            return ""
        heard = min(max(0.0, now - self.first_at), self.sent_s)
        words: list[str] = []
        for i, (offset, text) in enumerate(self.cues):
            if offset >= heard:
                break
            end = self.cues[i + 1][0] if i + 1 < len(self.cues) else self.sent_s
            fraction = 1.0 if end <= offset else min(1.0, (heard - offset) / (end - offset))
            sentence = text.split()
            words.extend(sentence[: max(1, round(len(sentence) * fraction))])
        return " ".join(words)

    def may_be_playing(self, now: float) -> bool:
        if self.open:
            return True
        return self.first_at is not None and now < self.first_at + self.sent_s + _PLAYBACK_SLACK_S


class _Input(Processor):
    """Pipeline head: frames from the client go down from here; errors coming up end here."""

    def __init__(self, transport: WebSocketTransport) -> None:
        super().__init__(name="ws.input")
        self._transport = transport

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is UP and isinstance(frame, ErrorFrame):
            ERRORS.labels(processor=frame.processor or "?", code=frame.code).inc()
            await self._transport.send_event(
                "error", message=frame.message, code=frame.code, stage=frame.processor,
                turn=frame.turn, retryable=frame.retryable,
            )  # fmt: skip
        await self.push(frame, direction)


class _Output(Processor):
    """Pipeline tail: frames become protocol events and audio for the client."""

    def __init__(self, transport: WebSocketTransport) -> None:
        super().__init__(name="ws.output")
        self._transport = transport
        self._reply: _Reply | None = None  # the latest reply audio sent
        self._replying: int | None = None  # turn whose reply text is being generated

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is not UP:
            await self._send(frame)
        # Everything goes on: to the session's end (observers, EndFrame) or upstream.
        await self.push(frame, direction)

    async def _send(self, frame: Frame) -> None:
        t = self._transport
        session = self.session
        if isinstance(frame, AudioOut):
            reply = self._reply
            # The final gate: synchronous check, then the write starts with no await between.
            if frame.turn < session.turn or reply is None or reply.turn != frame.turn:
                return
            now = self.clock.now()
            if reply.first_at is None:
                reply.first_at = now
                session.mark(frame.turn, "first_audio_out", now)
            if frame.text:
                reply.cues.append((reply.sent_s, frame.text))
            reply.sent_s += frame.duration
            await t.send_audio(frame.pcm)
        elif isinstance(frame, BotStartedSpeaking):
            if frame.turn >= session.turn:
                self._reply = _Reply(turn=frame.turn, sample_rate=frame.sample_rate)
                await t.send_event("audio_start", turn=frame.turn, sample_rate=frame.sample_rate)
        elif isinstance(frame, BotStoppedSpeaking):
            if (
                self._reply is not None
                and self._reply.turn == frame.turn
                and frame.turn >= session.turn
            ):
                self._reply.open = False
                await t.send_event("audio_end", turn=frame.turn)
        elif isinstance(frame, InterruptionFrame):
            await self._cut(frame.turn)
        elif isinstance(frame, Transcript):
            if frame.text:
                await t.send_event(
                    "transcript", turn=frame.turn, text=frame.text, final=frame.final
                )
        elif isinstance(frame, LLMText):
            await t.send_event("reply", turn=frame.turn, text=frame.text)
        elif isinstance(frame, EmotionTag):
            await t.send_event(
                "emotion", turn=frame.turn, label=frame.label, score=round(frame.score, 3)
            )
        elif isinstance(frame, ReplyStarted):
            self._replying = frame.turn
        elif isinstance(frame, ReplyEnded):
            if self._replying == frame.turn:
                self._replying = None
            await self._finish(frame.turn, interrupted=False)

    async def _cut(self, new_turn: int) -> None:
        """Barge-in: cancel audio that may still play; say what was heard of the cut reply."""
        reply, now = self._reply, self.clock.now()
        cut: int | None = None
        heard = ""
        if reply is not None and reply.turn < new_turn and reply.may_be_playing(now):
            await self._transport.send_event("audio_cancel", turn=reply.turn)
            cut, heard = reply.turn, reply.heard_text(now)
        if self._replying is not None and self._replying < new_turn:
            if cut != self._replying:  # its text was generated, none of its audio played
                cut, heard = self._replying, ""
            self._replying = None
        if reply is not None and reply.turn < new_turn:
            self._reply = None
        if cut is None:
            return
        await self.push(
            PlaybackInterrupted(turn=new_turn, reply_turn=cut, heard_text=heard, ts=now), UP
        )
        await self._finish(cut, interrupted=True)

    async def _finish(self, turn: int, *, interrupted: bool) -> None:
        session = self.session
        timeline = session.timelines.pop(turn)
        if timeline is None:
            return
        timeline.mark("reply_done", self.clock.now())
        observe_timeline(timeline)
        TURNS.labels(outcome="interrupted" if interrupted else "completed").inc()
        await self._transport.send_event(
            "metrics", turn=turn, interrupted=interrupted, **timeline.durations_ms()
        )


class WebSocketTransport:
    """Speaks ``/ws/audio`` over one connection.

    Args:
        connection: the accepted WebSocket.
        session_id: sent to the client in ``ready``.
        sample_rate_out: rate of reply audio (for ``ready``).
        max_binary_bytes: audio messages above this get an error event.
        on_hello: awaited with the client's hello (to apply settings such as the
            voice) before ``ready`` is sent; raise ``ProtocolError`` to refuse one.
        max_messages_per_s / burst: incoming audio message rate limit (JSON messages
            have a separate one: 20/s, bursts of 50).
    """

    def __init__(
        self,
        connection: Connection,
        *,
        session_id: str,
        sample_rate_out: int = 24000,
        max_binary_bytes: int = 1 << 20,
        on_hello: Callable[[Hello], Awaitable[None]] | None = None,
        max_messages_per_s: float = 400.0,
        burst: float = 2000.0,
    ) -> None:
        self._connection = connection
        self.session_id = session_id
        self._rate_out = sample_rate_out
        self._decoder = Decoder(max_binary_bytes=max_binary_bytes)
        self.on_hello = on_hello
        self._audio_limit = _RateLimit(max_messages_per_s, burst)
        # Control messages have their own bucket: an audio flood must not cost a hello.
        self._text_limit = _RateLimit(20.0, 50.0)
        self._input = _Input(self)
        self._output = _Output(self)
        self._send_lock = asyncio.Lock()
        self._closed = False
        self._last_flood_error = -1e9
        self.dropped_messages = 0

    def input(self) -> Processor:
        """The processor to put first in the pipeline."""
        return self._input

    def output(self) -> Processor:
        """The processor to put last in the pipeline."""
        return self._output

    @property
    def closed(self) -> bool:
        """The client is gone (a send failed or the reader ended)."""
        return self._closed

    async def run(self, session: Session) -> None:
        """Read the client's messages into ``session`` until the connection ends."""
        clock = session.clock
        try:
            async for message in self._connection:
                now = clock.now()
                limit = self._text_limit if isinstance(message, str) else self._audio_limit
                if not limit.admit(now):
                    await self._flooded(now)
                    continue
                try:
                    decoded = self._decoder.decode(message)
                except ProtocolError as exc:
                    await self.send_event("error", message=str(exc), code=exc.code)
                    continue
                await self._handle(session, decoded, clock)
        except Exception as exc:  # noqa: BLE001 - a broken connection ends this session only
            if not _is_disconnect(exc):
                raise
        finally:
            self._closed = True

    async def _handle(self, session: Session, message: object, clock: Clock) -> None:
        if isinstance(message, AudioChunk):
            await session.push(AudioIn(pcm=message.pcm, turn=session.turn, ts=clock.now()))
        elif isinstance(message, UserText):
            turn = await self._input.interrupt()  # a typed message is a new turn
            session.mark(turn, "user_speech_end")  # the user is waiting from now on
            await session.push(TextIn(text=message.text, turn=turn, ts=clock.now()))
        elif isinstance(message, Hello):
            try:
                if self.on_hello is not None:
                    await self.on_hello(message)
            except ProtocolError as exc:
                await self.send_event("error", message=str(exc), code=exc.code)
            await self.send_event(
                "ready",
                sample_rate_in=16000,
                sample_rate_out=self._rate_out,
                session=self.session_id,
            )

    async def _flooded(self, now: float) -> None:
        self.dropped_messages += 1
        if now - self._last_flood_error >= 1.0:
            self._last_flood_error = now
            await self.send_event(
                "error",
                message="too many messages: dropping input; send 20-100 ms audio chunks",
                code="rate_limited",
            )

    async def send_event(self, kind: str, **fields: Any) -> None:
        """Send one JSON event (silently nothing once the client is gone)."""
        await self._send(event(kind, **fields))

    async def send_audio(self, pcm: bytes) -> None:
        """Send one binary audio message."""
        await self._send(pcm)

    async def _send(self, message: str | bytes) -> None:
        if self._closed:
            return
        async with self._send_lock:
            try:
                await self._connection.send(message)
            except Exception as exc:  # noqa: BLE001
                if not _is_disconnect(exc):
                    raise
                self._closed = True
                logger.info("session {}: client went away", self.session_id)


def _is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` means the peer closed or dropped the connection."""
    try:
        from websockets.exceptions import ConnectionClosed
    except ImportError:  # pragma: no cover - the server extra is not installed
        return isinstance(exc, ConnectionError)
    return isinstance(exc, ConnectionClosed | ConnectionError)
