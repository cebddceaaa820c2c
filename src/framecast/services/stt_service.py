"""The STT service: one Whisper model behind WebSocket ``/ws/stt``, plus ``GET /health``.

    python -m framecast.services.stt_service --port 7003 --model whisper-tiny.en

Each request is a JSON text message followed by one binary PCM16 message (format in
:mod:`framecast.engines.remote`). A connection's requests are answered one at a time,
in order; different connections decode in parallel up to the worker pool's size, and
wait in arrival order beyond it. Bad input (bad JSON, audio without a request, an odd
byte count, too much audio) gets an ``error`` answer and the connection stays usable.
Messages far over the audio limit (twice it) are refused by the WebSocket layer, which
closes the connection with code 1009.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from loguru import logger
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from framecast.engines._pcm import SAMPLE_RATE, int16_bytes_to_float32
from framecast.engines.remote import STT_PATH
from framecast.exceptions import FramecastError, ProtocolError, ServiceError
from framecast.services import configure_logging, serve_until_signalled
from framecast.workers import WorkerPool

__all__ = [
    "Rejection",
    "RequestAssembler",
    "STTService",
    "TranscribeJob",
    "error_message",
    "main",
    "result_message",
]

RequestId = int | str | None


class _Segment(Protocol):
    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    @property
    def text(self) -> str: ...


class _Transcript(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def segments(self) -> Sequence[_Segment]: ...


class STTEngine(Protocol):
    """A blocking speech-to-text model, e.g. :class:`~framecast.engines.WhisperEngine`."""

    def transcribe(
        self, pcm: npt.NDArray[np.float32], *, prompt: str | None = None
    ) -> _Transcript: ...


# --- messages (sans-I/O) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscribeJob:
    """A complete request: its header and its audio (PCM16 LE 16 kHz mono)."""

    id: RequestId
    prompt: str | None
    pcm: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request (or stray message) to answer with an error instead of a transcript."""

    id: RequestId
    message: str
    code: str


class RequestAssembler:
    """Pairs each ``transcribe`` text message with the binary message that follows it.

    Sans-I/O: feed every message of a connection in order; each call returns what is
    ready to answer, in order. It holds at most one pending header.

    Args:
        max_audio_bytes: largest audio accepted (larger gets a ``too_large`` rejection).
    """

    def __init__(self, max_audio_bytes: int) -> None:
        self._max_audio_bytes = max_audio_bytes
        self._pending: tuple[RequestId, str | None] | None = None

    def feed(self, message: str | bytes) -> list[TranscribeJob | Rejection]:
        """Take the connection's next message; return the jobs and rejections it completes."""
        out: list[TranscribeJob | Rejection] = []
        if isinstance(message, str):
            if self._pending is not None:
                out.append(
                    Rejection(
                        self._pending[0], "expected audio after the transcribe message", "bad_input"
                    )
                )
                self._pending = None
            try:
                self._pending = _parse_header(message)
            except ProtocolError as exc:
                out.append(Rejection(_salvage_id(message), str(exc), exc.code))
            return out
        if self._pending is None:
            out.append(Rejection(None, "audio without a transcribe message before it", "bad_input"))
            return out
        request_id, prompt = self._pending
        self._pending = None
        if len(message) > self._max_audio_bytes:
            limit_s = self._max_audio_bytes / (2 * SAMPLE_RATE)
            out.append(Rejection(request_id, f"audio over the {limit_s:g} s limit", "too_large"))
        elif len(message) % 2:
            out.append(
                Rejection(
                    request_id, f"PCM16 needs an even byte count, got {len(message)}", "bad_input"
                )
            )
        else:
            out.append(TranscribeJob(request_id, prompt, message))
        return out


def _parse_header(message: str) -> tuple[RequestId, str | None]:
    try:
        header: Any = json.loads(message)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("type") != "transcribe":
        raise ProtocolError('expected {"type": "transcribe", "id": ..., "prompt": ...}')
    request_id = header.get("id")
    if not isinstance(request_id, int | str | None) or isinstance(request_id, bool):
        raise ProtocolError("id must be a number or a string")
    prompt = header.get("prompt")
    if not isinstance(prompt, str | None):
        raise ProtocolError("prompt must be a string or null")
    return request_id, prompt or None


def _salvage_id(message: str) -> RequestId:
    """The id of a rejected header, when it has a usable one (so the client can match)."""
    try:
        request_id = json.loads(message).get("id")
    except (ValueError, AttributeError):
        return None
    ok = isinstance(request_id, int | str) and not isinstance(request_id, bool)
    return request_id if ok else None


def result_message(
    request_id: RequestId, text: str, segments: Sequence[_Segment], decode_ms: float
) -> str:
    """The ``result`` answer to a request."""
    return json.dumps(
        {
            "type": "result",
            "id": request_id,
            "text": text,
            "segments": [[round(s.start, 3), round(s.end, 3), s.text] for s in segments],
            "decode_ms": round(decode_ms, 1),
        }
    )


def error_message(request_id: RequestId, message: str, code: str, *, retryable: bool) -> str:
    """The ``error`` answer to a request (or to a stray message, with a null id)."""
    return json.dumps(
        {
            "type": "error",
            "id": request_id,
            "message": message,
            "code": code,
            "retryable": retryable,
        }
    )


# --- the service --------------------------------------------------------------------------


class STTService:
    """Serves one STT engine to many clients over WebSocket.

    Args:
        engine: the model, shared by every connection.
        host: address to bind.
        port: TCP port (0 = any free port; see :attr:`port` once started).
        workers: decodes that may run at once (threads of the worker pool).
        max_audio_s: longest audio one request may carry.
    """

    def __init__(
        self,
        engine: STTEngine,
        *,
        host: str = "127.0.0.1",
        port: int = 7003,
        workers: int = 1,
        max_audio_s: float = 30.0,
    ) -> None:
        self._engine = engine
        self._host = host
        self._port = port
        self._pool = WorkerPool(workers, name="framecast-stt-service")
        self._max_audio_bytes = int(max_audio_s * SAMPLE_RATE) * 2
        self._server: Server | None = None
        self.connections = 0
        self.requests = 0

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            return self._port
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def url(self) -> str:
        """The WebSocket endpoint, for :class:`~framecast.engines.remote.RemoteSTTEngine`."""
        return f"ws://{self._host}:{self.port}{STT_PATH}"

    async def start(self) -> None:
        """Start listening."""
        self._server = await serve(
            self._serve_connection,
            self._host,
            self._port,
            process_request=self._route,
            compression=None,  # PCM does not compress; deflate would only cost CPU
            max_size=2 * self._max_audio_bytes,  # up to this: an error answer; beyond: 1009
            max_queue=4,
        )

    async def aclose(self) -> None:
        """Stop accepting, close connections (their handlers are joined); idempotent."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._pool.close()

    async def __aenter__(self) -> STTService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == STT_PATH:
            return None
        if path == "/health":
            body = {
                "status": "ok",
                "service": "stt",
                "connections": self.connections,
                "requests": self.requests,
            }
            return _json_response(200, body)
        return _json_response(404, {"error": "not found", "code": "not_found"})

    async def _serve_connection(self, connection: ServerConnection) -> None:
        assembler = RequestAssembler(self._max_audio_bytes)
        self.connections += 1
        try:
            async for message in connection:
                for item in assembler.feed(message):
                    await connection.send(await self._answer(item))
        except ConnectionClosed:
            pass  # the client left, perhaps before its answer was ready
        finally:
            self.connections -= 1

    async def _answer(self, item: TranscribeJob | Rejection) -> str:
        if isinstance(item, Rejection):
            return error_message(item.id, item.message, item.code, retryable=False)
        self.requests += 1
        try:
            return await self._pool.run(self._decode, item)
        except FramecastError as exc:
            logger.warning("transcription {} failed: {}", item.id, exc)
            retryable = isinstance(exc, ServiceError) and exc.retryable
            return error_message(item.id, str(exc), exc.code, retryable=retryable)
        except Exception as exc:  # noqa: BLE001 - one bad call must not end the connection
            logger.opt(exception=exc).error("transcription {} crashed", item.id)
            return error_message(item.id, f"internal error: {exc!r}", "internal", retryable=False)

    def _decode(self, job: TranscribeJob) -> str:
        """Worker thread: decode, and time the model call alone (not the wait for a worker)."""
        audio = int16_bytes_to_float32(job.pcm)
        started = time.perf_counter()
        result = self._engine.transcribe(audio, prompt=job.prompt)
        decode_ms = (time.perf_counter() - started) * 1000.0
        return result_message(job.id, result.text, result.segments, decode_ms)


def _json_response(status: int, payload: dict[str, Any]) -> Response:
    body = json.dumps(payload).encode()
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status, {200: "OK", 404: "Not Found"}.get(status, ""), headers, body)


# --- command line --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``python -m framecast.services.stt_service`` (and ``framecast serve stt``)."""
    parser = argparse.ArgumentParser(
        prog="framecast serve stt", description="Serve a Whisper model over WebSocket /ws/stt."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=7003, help="TCP port")
    parser.add_argument(
        "--model", default="whisper-tiny.en", help="model store name or a model directory"
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per decode")
    parser.add_argument("--workers", type=int, default=1, help="decodes that may run at once")
    parser.add_argument("--max-audio-s", type=float, default=30.0, help="longest audio per request")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model, serve until SIGINT/SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        engine = _load_engine(args.model, threads=args.threads, workers=args.workers)
        service = STTService(
            engine,
            host=args.host,
            port=args.port,
            workers=args.workers,
            max_audio_s=args.max_audio_s,
        )
        asyncio.run(serve_until_signalled(service))
    except FramecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _load_engine(model: str, *, threads: int, workers: int) -> STTEngine:
    from framecast.engines.whisper import WhisperEngine
    from framecast.models import ModelStore

    path = Path(model)
    engine = WhisperEngine(
        path if path.is_dir() else ModelStore().path(model),
        cpu_threads=threads,
        num_workers=workers,
    )
    logger.info("Whisper {} loaded; warm-up took {:.0f} ms", model, engine.warmup())
    return engine


if __name__ == "__main__":
    sys.exit(main())
