"""The TTS service: one Kokoro model behind ``POST /tts/stream``, plus ``GET /health``.

    python -m framecast.services.tts_service --port 7002

``POST /tts/stream`` takes JSON ``{"text", "voice", "speed"}`` (voice and speed are
optional) and answers 200 with ``X-Sample-Rate: 24000`` and a chunked body of
length-prefixed PCM16 frames, sent as they are synthesized and ended by a zero length
(:mod:`framecast.engines.remote`). Bad input gets 400 with JSON
``{"error", "code", "retryable"}``.

The HTTP/1.1 here is deliberately small, on ``asyncio.start_server``: one request per
connection (``Connection: close``), a ``Content-Length`` body, a chunked response.
The ``websockets`` server could answer plain GETs, but its ``process_request`` returns
a whole response and cannot stream one. The status line goes out with the first audio
chunk, so a failure to synthesize the first sentence still gets an error status; a
later failure ends the body without the end marker, which the client reports.

A client that hangs up is noticed at once (end of file on the socket) even while its
synthesis waits for a worker: the stream is cancelled, and the engine's generator is
closed at its next chunk, so the worker is free for the next request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import aclosing
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from loguru import logger

from framecast.engines.remote import END_OF_STREAM, TTS_PATH, encode_frame
from framecast.exceptions import ConfigError, FramecastError, ProtocolError, ServiceError
from framecast.services import configure_logging, serve_until_signalled
from framecast.workers import WorkerPool

__all__ = [
    "HttpRequest",
    "SpeechRequest",
    "TTSService",
    "TTSStats",
    "main",
    "parse_head",
    "parse_speech_request",
]

SPEED_RANGE = (0.5, 2.0)
_MAX_HEAD_BYTES = 16 * 1024
_MAX_BODY_BYTES = 64 * 1024
_READ_TIMEOUT_S = 10.0
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}
# ProtocolError.code of a malformed request -> HTTP status
_STATUS_OF = {"head_too_large": 431, "too_large": 413, "length_required": 411}


class TTSEngine(Protocol):
    """A blocking TTS model, e.g. :class:`~framecast.engines.KokoroEngine`."""

    @property
    def sample_rate(self) -> int: ...

    def voices(self) -> list[str]: ...

    def synthesize(self, text: str, *, voice: str = ..., speed: float = ...) -> Iterator[bytes]: ...


# --- requests (sans-I/O) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as read off the socket; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """A validated ``/tts/stream`` request."""

    text: str
    voice: str
    speed: float


def parse_head(head: bytes) -> HttpRequest:
    """Parse a request line and headers (up to and including the blank line).

    The query string is dropped from the path; repeated headers are joined with ``,``.

    Raises:
        ProtocolError: if the request line or a header is malformed.
    """
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError as exc:
        raise ProtocolError("malformed request line") from exc
    if not version.startswith("HTTP/1.") or not method.isalpha():
        raise ProtocolError(f"unsupported request line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        key = name.lower()
        headers[key] = f"{headers[key]},{value.strip()}" if key in headers else value.strip()
    return HttpRequest(method, target.split("?", 1)[0], headers)


def parse_speech_request(
    body: bytes, *, voices: Collection[str], default_voice: str, max_chars: int
) -> SpeechRequest:
    """Validate the JSON body of ``POST /tts/stream``.

    Raises:
        ProtocolError: for a body that is not a JSON object, empty or overlong text
            (code ``bad_input``), an unknown voice (``unknown_voice``, the message lists
            the valid ones) or a speed outside 0.5-2.0.
    """
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise ProtocolError(f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError('expected a JSON object {"text", "voice", "speed"}')
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ProtocolError("text must be a non-empty string")
    if len(text) > max_chars:
        raise ProtocolError(f"text is {len(text)} characters; the limit is {max_chars}")
    voice = data.get("voice", default_voice)
    if voice not in voices:
        raise ProtocolError(
            f"unknown voice {voice!r}; available: {', '.join(sorted(voices))}",
            code="unknown_voice",
        )
    speed = data.get("speed", 1.0)
    if (
        not isinstance(speed, int | float)
        or isinstance(speed, bool)
        or not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]
    ):
        raise ProtocolError(f"speed must be a number within {SPEED_RANGE}, got {speed!r}")
    return SpeechRequest(text, str(voice), float(speed))


# --- the service --------------------------------------------------------------------------


@dataclass
class TTSStats:
    """Counters of the service, also reported by ``GET /health``.

    Attributes:
        requests: speech requests received (valid or not).
        completed: streams sent to their end marker.
        aborted: streams the client hung up on.
        failed: streams the engine failed on.
        active: streams running now.
    """

    requests: int = 0
    completed: int = 0
    aborted: int = 0
    failed: int = 0
    active: int = 0


class TTSService:
    """Serves one TTS engine over HTTP, streaming audio as it is synthesized.

    Args:
        engine: the model, shared by every request.
        host: address to bind.
        port: TCP port (0 = any free port; see :attr:`port` once started).
        workers: syntheses that may run at once (threads of the worker pool).
        default_voice: voice of requests that name none.
        max_text_chars: longest text one request may carry.

    Raises:
        ConfigError: if ``default_voice`` is not one of the engine's voices.
    """

    def __init__(
        self,
        engine: TTSEngine,
        *,
        host: str = "127.0.0.1",
        port: int = 7002,
        workers: int = 1,
        default_voice: str = "af_heart",
        max_text_chars: int = 2000,
    ) -> None:
        self._voices = frozenset(engine.voices())
        if default_voice not in self._voices:
            raise ConfigError(f"unknown default voice {default_voice!r}")
        self._engine = engine
        self._host = host
        self._port = port
        self._pool = WorkerPool(workers, name="framecast-tts-service")
        self._default_voice = default_voice
        self._max_text_chars = max_text_chars
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._idle: asyncio.Event | None = None
        self.stats = TTSStats()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The service's base URL, for :class:`~framecast.engines.remote.RemoteTTSEngine`."""
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        """Start listening."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._server = await asyncio.start_server(
            self._handle, self._host, self._port, limit=_MAX_HEAD_BYTES
        )

    async def wait_idle(self) -> None:
        """Return once no stream is running (at once if none is)."""
        if self._idle is not None:
            await self._idle.wait()

    async def aclose(self, *, grace_s: float = 5.0) -> None:
        """Stop accepting; let running streams finish for up to ``grace_s``, then cancel them.

        Idempotent.
        """
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wait_idle(), grace_s)
        handlers = set(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers)
        await self._server.wait_closed()
        self._server = None
        self._pool.close()

    async def __aenter__(self) -> TTSService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- one connection ---------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            try:
                async with asyncio.timeout(_READ_TIMEOUT_S):
                    request = await _read_request(reader, writer)
            except ProtocolError as exc:
                await _send_json(writer, _STATUS_OF.get(exc.code, 400), _error_body(exc))
                return
            await self._route(request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client left or stalled; nothing to answer
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _route(
        self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        routes = {"/health": "GET", TTS_PATH: "POST"}
        if request.path not in routes:
            await _send_json(writer, 404, {"error": "not found", "code": "not_found"})
        elif request.method != routes[request.path]:
            await _send_json(
                writer, 405, {"error": f"use {routes[request.path]}", "code": "method_not_allowed"}
            )
        elif request.path == "/health":
            await _send_json(
                writer,
                200,
                {
                    "status": "ok",
                    "service": "tts",
                    "sample_rate": self._engine.sample_rate,
                    **asdict(self.stats),
                },
            )
        else:
            await self._speak(request, reader, writer)

    async def _speak(
        self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.stats.requests += 1
        try:
            speech = parse_speech_request(
                request.body,
                voices=self._voices,
                default_voice=self._default_voice,
                max_chars=self._max_text_chars,
            )
        except ProtocolError as exc:
            await _send_json(writer, 400, _error_body(exc))
            return
        self._stream_started()
        streaming = asyncio.create_task(self._stream(speech, writer))
        hangup = asyncio.create_task(_wait_for_eof(reader))
        try:
            await asyncio.wait({streaming, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, hangup):
                task.cancel()
            await asyncio.wait({streaming, hangup})
            if not hangup.cancelled():
                hangup.exception()  # a reset socket: same as a hang-up, nothing to report
            self._stream_ended(streaming)

    def _stream_started(self) -> None:
        self.stats.active += 1
        if self._idle is not None:
            self._idle.clear()

    def _stream_ended(self, streaming: asyncio.Task[bool]) -> None:
        self.stats.active -= 1
        error = None if streaming.cancelled() else streaming.exception()
        if streaming.cancelled() or isinstance(error, ConnectionError):
            self.stats.aborted += 1
            logger.debug("tts: the client hung up mid-stream")
        elif error is not None:
            self.stats.failed += 1
            logger.opt(exception=error).error("tts: stream crashed")
        elif streaming.result():
            self.stats.completed += 1
        else:
            self.stats.failed += 1
        if self.stats.active == 0 and self._idle is not None:
            self._idle.set()

    async def _stream(self, speech: SpeechRequest, writer: asyncio.StreamWriter) -> bool:
        """Send the audio of ``speech``; return whether it was sent whole."""
        make = functools.partial(
            self._engine.synthesize, speech.text, voice=speech.voice, speed=speech.speed
        )
        started = time.perf_counter()
        async with aclosing(self._pool.iterate(make)) as chunks:
            try:
                chunk = await anext(chunks, None)
            except FramecastError as exc:
                logger.warning("tts: synthesis failed before any audio: {}", exc)
                status = 400 if isinstance(exc, ConfigError) else 500
                await _send_json(writer, status, _error_body(exc))
                return False
            except Exception as exc:  # noqa: BLE001 - a bug in the engine still gets a 500
                logger.opt(exception=exc).error("tts: synthesis crashed")
                await _send_json(
                    writer,
                    500,
                    {"error": f"internal error: {exc!r}", "code": "internal", "retryable": False},
                )
                return False
            first_ms = (time.perf_counter() - started) * 1000.0
            writer.write(
                _head(
                    200,
                    [
                        ("Content-Type", "application/octet-stream"),
                        ("Transfer-Encoding", "chunked"),
                        ("X-Sample-Rate", str(self._engine.sample_rate)),
                        ("Cache-Control", "no-store"),
                    ],
                )
            )
            sent = 0
            try:
                while chunk is not None:
                    if chunk:
                        writer.write(_http_chunk(encode_frame(chunk)))
                        sent += len(chunk)
                        await writer.drain()
                    chunk = await anext(chunks, None)
            except FramecastError as exc:
                # The status is out: ending the body without the end marker tells the client.
                logger.warning("tts: synthesis failed mid-stream after {} bytes: {}", sent, exc)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return False
        writer.write(_http_chunk(END_OF_STREAM) + b"0\r\n\r\n")
        await writer.drain()
        logger.debug(
            "tts: {} chars, first audio after {:.0f} ms, {:.2f} s of audio",
            len(speech.text),
            first_ms,
            sent / 2 / self._engine.sample_rate,
        )
        return True


# --- HTTP/1.1 pieces ------------------------------------------------------------------------


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> HttpRequest:
    """Read one request with a ``Content-Length`` body (bounded head and body).

    Raises:
        ProtocolError: malformed or too large (``code`` picks the status).
        asyncio.IncompleteReadError: the client closed before a whole request.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError("request head too large", code="head_too_large") from exc
    request = parse_head(head)
    if "transfer-encoding" in request.headers:
        raise ProtocolError("send the body with Content-Length", code="length_required")
    length_text = request.headers.get("content-length", "0")
    if not length_text.isdigit():
        raise ProtocolError(f"bad Content-Length {length_text[:20]!r}")
    length = int(length_text)
    if length > _MAX_BODY_BYTES:
        raise ProtocolError(f"body over {_MAX_BODY_BYTES} bytes", code="too_large")
    if length and request.headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for this on larger bodies
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(request.method, request.path, request.headers, body)


async def _wait_for_eof(reader: asyncio.StreamReader) -> None:
    """Return when the client closes its side; anything it sends meanwhile is dropped."""
    while await reader.read(4096):
        pass


def _head(status: int, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1")


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def _error_body(exc: FramecastError) -> dict[str, Any]:
    retryable = isinstance(exc, ServiceError) and exc.retryable
    return {"error": str(exc), "code": exc.code, "retryable": retryable}


async def _send_json(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    writer.write(
        _head(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        + body
    )
    await writer.drain()


# --- command line --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m framecast.services.tts_service`` (and ``framecast serve tts``)."""
    parser = argparse.ArgumentParser(
        prog="framecast serve tts", description="Serve Kokoro-82M over HTTP POST /tts/stream."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=7002, help="TCP port")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    parser.add_argument("--workers", type=int, default=1, help="syntheses that may run at once")
    parser.add_argument("--voice", default="af_heart", help="voice of requests that name none")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model, serve until SIGINT/SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        from framecast.engines.kokoro import KokoroEngine
        from framecast.models import ModelStore

        store = ModelStore()
        engine = KokoroEngine(
            store.path("kokoro-int8"), store.path("kokoro-voices"), threads=args.threads
        )
        engine.warmup()
        service = TTSService(
            engine, host=args.host, port=args.port, workers=args.workers, default_voice=args.voice
        )
        asyncio.run(serve_until_signalled(service))
    except FramecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
