"""Engines that call the standalone STT and TTS services, and the TTS stream framing.

The remote engines have the local engines' shapes, so the same processors run either
way (DESIGN.md, idea 7): ``WhisperSTT(RemoteSTTEngine(url), pool)`` and
``ElevenLabsTTS(RemoteTTSEngine(url))``. The services are
:mod:`framecast.services.stt_service` and :mod:`framecast.services.tts_service`.

STT, WebSocket ``/ws/stt``: per request the client sends a text message
``{"type": "transcribe", "id": 7, "prompt": "..." | null}`` and then one binary message
of PCM16 LE 16 kHz mono. The service answers, in request order,
``{"type": "result", "id": 7, "text": "...", "segments": [[start, end, text], ...],
"decode_ms": 81.2}`` or ``{"type": "error", "id": 7, "message": "...", "code": "...",
"retryable": false}``. A connection carries any number of requests.

TTS, ``POST /tts/stream`` with JSON ``{"text", "voice", "speed"}``: the 200 response
body is a sequence of frames, each a 4-byte little-endian unsigned length and that
many bytes of PCM16 LE mono (rate in the ``X-Sample-Rate`` header). A zero length ends
the stream, so a client can tell a finished stream from one cut off by a failure.
The framing is sans-I/O here (:func:`encode_frame`, :class:`FrameDecoder`).
"""

from __future__ import annotations

import itertools
import json
import struct
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from loguru import logger
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from framecast.engines._http import HttpEngine
from framecast.engines._pcm import float32_to_int16_bytes, to_float32_mono
from framecast.engines.whisper import Segment
from framecast.exceptions import ConfigError, ProtocolError, RemoteServiceError

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "END_OF_STREAM",
    "MAX_FRAME_BYTES",
    "STT_PATH",
    "TTS_PATH",
    "FrameDecoder",
    "RemoteSTTEngine",
    "RemoteTTSEngine",
    "RemoteTranscription",
    "decode_frames",
    "encode_frame",
    "parse_stt_reply",
    "transcribe_message",
]

STT_PATH = "/ws/stt"
TTS_PATH = "/tts/stream"

MAX_FRAME_BYTES = 1 << 20
"""Largest frame payload a decoder accepts by default (~22 s of 24 kHz PCM16)."""

_LENGTH = struct.Struct("<I")
END_OF_STREAM = _LENGTH.pack(0)
"""The zero-length frame that ends a stream."""


# --- TTS stream framing (sans-I/O) -----------------------------------------------------


def encode_frame(payload: bytes) -> bytes:
    """One frame: the 4-byte little-endian length of ``payload``, then ``payload``.

    Raises:
        ValueError: for an empty payload (a zero length means "end of stream";
            send :data:`END_OF_STREAM` for that) or one over 4 GiB.
    """
    if not payload:
        raise ValueError("a frame cannot be empty: a zero length marks the end of the stream")
    if len(payload) > 0xFFFF_FFFF:
        raise ValueError(f"a frame holds at most 4 GiB, got {len(payload)} bytes")
    return _LENGTH.pack(len(payload)) + payload


def decode_frames(body: bytes, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> list[bytes]:
    """The payloads of a whole stream, which must end with :data:`END_OF_STREAM`.

    Raises:
        ProtocolError: as :meth:`FrameDecoder.feed` and :meth:`FrameDecoder.finish`.
    """
    decoder = FrameDecoder(max_frame_bytes=max_frame_bytes)
    payloads = decoder.feed(body)
    decoder.finish()
    return payloads


class FrameDecoder:
    """Incremental decoder of a length-prefixed stream, fed bytes as they arrive.

    Network reads split frames anywhere; :meth:`feed` returns each payload once it is
    complete and keeps the rest. It holds at most one frame (``max_frame_bytes`` plus
    the length): a larger announced length is rejected at once.

    Args:
        max_frame_bytes: largest payload accepted.
    """

    def __init__(self, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be positive, got {max_frame_bytes}")
        self._max = max_frame_bytes
        self._buffer = bytearray()
        self._ended = False

    @property
    def ended(self) -> bool:
        """Whether the end marker has been decoded."""
        return self._ended

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned (part of a frame)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes of the stream; return the payloads they complete, in order.

        Raises:
            ProtocolError: (code ``bad_frame``) for a length over ``max_frame_bytes``
                or data after the end marker.
        """
        if self._ended:
            if data:
                raise ProtocolError("data after the end of the stream", code="bad_frame")
            return []
        self._buffer += data
        payloads: list[bytes] = []
        while len(self._buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self._buffer)
            if size == 0:
                self._ended = True
                del self._buffer[: _LENGTH.size]
                if self._buffer:
                    raise ProtocolError("data after the end of the stream", code="bad_frame")
                break
            if size > self._max:
                raise ProtocolError(
                    f"frame of {size} bytes exceeds the limit of {self._max}", code="bad_frame"
                )
            end = _LENGTH.size + size
            if len(self._buffer) < end:
                break
            payloads.append(bytes(self._buffer[_LENGTH.size : end]))
            del self._buffer[:end]
        return payloads

    def finish(self) -> None:
        """Check that the stream ended properly, once the transport has no more bytes.

        Raises:
            ProtocolError: (code ``truncated``) if the end marker never came: the
                sender failed or the connection broke mid-stream.
        """
        if not self._ended:
            detail = f" inside a frame ({len(self._buffer)} bytes pending)" if self._buffer else ""
            raise ProtocolError(f"the stream ended before its end marker{detail}", code="truncated")


# --- STT messages (sans-I/O, client side) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteTranscription:
    """What the STT service heard; the shape :class:`~framecast.processors.WhisperSTT` reads.

    Attributes:
        text: the whole transcript.
        segments: timed pieces, seconds from the start of the audio sent.
        decode_ms: the model call's time on the service.
        round_trip_ms: the whole call as the client saw it (network, queueing, decode);
            0 until set by :meth:`RemoteSTTEngine.transcribe`.
    """

    text: str
    segments: tuple[Segment, ...]
    decode_ms: float
    round_trip_ms: float = 0.0


def transcribe_message(request_id: int, prompt: str | None) -> str:
    """The text message that announces one transcription request."""
    return json.dumps({"type": "transcribe", "id": request_id, "prompt": prompt or None})


def parse_stt_reply(message: str | bytes, request_id: int) -> RemoteTranscription:
    """Decode the service's answer to request ``request_id``.

    Raises:
        RemoteServiceError: for an ``error`` answer, with the service's ``code`` and
            ``retryable``.
        ProtocolError: for a malformed answer or one to another request: the
            connection is out of step and must not be used again.
    """
    try:
        if isinstance(message, bytes):
            raise ValueError("a binary message where a JSON reply was expected")
        reply: Any = json.loads(message)
        if not isinstance(reply, dict):
            raise ValueError("the reply is not a JSON object")
        if reply.get("id") != request_id:
            raise ValueError(f"reply to request {reply.get('id')!r}, expected {request_id}")
        kind = reply.get("type")
        if kind == "error":
            error = RemoteServiceError(
                f"STT service: {reply.get('message') or 'unknown error'}",
                retryable=bool(reply.get("retryable", False)),
                service="stt",
            )
            error.code = str(reply.get("code") or error.code)
            raise error
        if kind != "result":
            raise ValueError(f"unexpected reply type {kind!r}")
        segments = tuple(
            Segment(start=float(start), end=float(end), text=str(text))
            for start, end, text in reply["segments"]
        )
        return RemoteTranscription(
            text=str(reply["text"]), segments=segments, decode_ms=float(reply["decode_ms"])
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"malformed STT reply: {exc}", code="bad_reply") from exc


# --- STT client -----------------------------------------------------------------------


class RemoteSTTEngine:
    """Speech-to-text on a remote STT service, with the local engine's blocking call.

    Each worker thread that calls :meth:`transcribe` gets its own WebSocket connection
    (opened on first use, reopened after a failure), so a pool of N workers keeps N
    requests in flight on the service.

    Args:
        url: ``ws://host:port`` (``/ws/stt`` is added when the path is empty) or the
            full endpoint URL.
        timeout_s: longest wait for one answer, queueing on the service included.
        connect_timeout_s: longest wait for a connection and its handshake.

    Raises:
        ConfigError: if ``url`` is not a ``ws://`` or ``wss://`` URL.
    """

    def __init__(
        self, url: str, *, timeout_s: float = 30.0, connect_timeout_s: float = 5.0
    ) -> None:
        self.url = _endpoint(url, STT_PATH, ("ws", "wss"))
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._local = threading.local()
        self._open: set[ClientConnection] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False

    def transcribe(self, pcm: npt.ArrayLike, *, prompt: str | None = None) -> RemoteTranscription:
        """Transcribe mono 16 kHz audio on the service; blocks until it answers.

        Args:
            pcm: float32 in [-1, 1] (int16 arrays are scaled), sent as PCM16.
            prompt: text said just before this audio.

        Raises:
            ValueError: if ``pcm`` is not 1-D.
            RemoteServiceError: if the service is unreachable, times out or breaks the
                connection (retryable), or answers with an error (its ``code`` and
                ``retryable`` as the service set them; bad input is not retryable).
        """
        audio = float32_to_int16_bytes(to_float32_mono(pcm))
        started = time.perf_counter()
        while True:
            connection, reused = self._connection()
            request_id = next(self._ids)
            try:
                connection.send(transcribe_message(request_id, prompt))
                connection.send(audio)
                reply = connection.recv(timeout=self._timeout_s)
            except TimeoutError as exc:
                # The answer may still come and would then answer the next request.
                self._drop(connection)
                raise RemoteServiceError(
                    f"STT service at {self.url} did not answer within {self._timeout_s} s",
                    retryable=True,
                    service="stt",
                ) from exc
            except (ConnectionClosed, OSError) as exc:
                self._drop(connection)
                if reused:
                    logger.debug("STT connection to {} was closed; reconnecting", self.url)
                    continue  # an idle connection went stale: one fresh attempt
                raise RemoteServiceError(
                    f"STT service at {self.url} closed the connection: {exc}",
                    retryable=True,
                    service="stt",
                ) from exc
            try:
                result = parse_stt_reply(reply, request_id)
            except ProtocolError as exc:
                self._drop(connection)  # out of step; a fresh connection starts clean
                raise RemoteServiceError(
                    f"STT service at {self.url}: {exc}", retryable=True, service="stt"
                ) from exc
            return replace(result, round_trip_ms=(time.perf_counter() - started) * 1000.0)

    def warmup(self) -> float:
        """Connect and transcribe one second of silence, so the first real call is not slower.

        Returns:
            The call's round trip in milliseconds.

        Raises:
            RemoteServiceError: as :meth:`transcribe`.
        """
        return self.transcribe(np.zeros(16_000, dtype=np.float32)).round_trip_ms

    def close(self) -> None:
        """Close every connection (of every thread); later calls fail. Idempotent."""
        with self._lock:
            self._closed = True
            connections, self._open = self._open, set()
        for connection in connections:
            connection.close()

    def __enter__(self) -> RemoteSTTEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connection(self) -> tuple[ClientConnection, bool]:
        """This thread's connection and whether it was used before (it may be stale)."""
        if self._closed:
            raise RemoteServiceError("the remote STT engine is closed", service="stt")
        connection: ClientConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        try:
            # Entered like a context manager (closed in _drop/close): websockets >= 17
            # warns about a bare connect(), and older versions lack its `legacy` flag.
            connection = connect(
                self.url,
                open_timeout=self._connect_timeout_s,
                close_timeout=1.0,
                compression=None,  # PCM does not compress
                max_size=4 << 20,
            ).__enter__()
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise RemoteServiceError(
                f"cannot connect to the STT service at {self.url}: {exc}",
                retryable=True,
                service="stt",
            ) from exc
        with self._lock:
            if self._closed:
                connection.close()
                raise RemoteServiceError("the remote STT engine is closed", service="stt")
            self._open.add(connection)
        self._local.connection = connection
        return connection, False

    def _drop(self, connection: ClientConnection) -> None:
        self._local.connection = None
        with self._lock:
            self._open.discard(connection)
        connection.close()


# --- TTS client -----------------------------------------------------------------------


class RemoteTTSEngine(HttpEngine):
    """Text-to-speech streamed from a remote TTS service, as an async engine.

    Use it with :class:`~framecast.processors.tts.ElevenLabsTTS`, which takes any engine
    with ``sample_rate`` and an async ``synthesize(text)``.

    Args:
        url: ``http://host:port`` (``/tts/stream`` is added when the path is empty) or
            the full endpoint URL.
        voice: the service's voice for every request of this engine.
        speed: 0.5-2.0.
        sample_rate: the rate the service must stream (checked on every response).
        http_client: an ``httpx2.AsyncClient`` to share; when omitted the engine owns
            one and closes it in :meth:`aclose`.
        connect_timeout_s: longest wait for a connection.
        read_timeout_s: longest wait between two pieces of the body, which includes
            the synthesis of a whole sentence.

    Raises:
        ConfigError: if ``url`` is not an ``http://`` or ``https://`` URL.
    """

    def __init__(
        self,
        url: str,
        voice: str = "af_heart",
        speed: float = 1.0,
        *,
        sample_rate: int = 24_000,
        http_client: httpx2.AsyncClient | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 20.0,
    ) -> None:
        self.url = _endpoint(url, TTS_PATH, ("http", "https"))
        self.voice = voice
        self.speed = speed
        self._sample_rate = sample_rate
        super().__init__(
            http_client, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s
        )

    @property
    def sample_rate(self) -> int:
        """Rate of the PCM that :meth:`synthesize` yields."""
        return self._sample_rate

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """Yield PCM16 LE mono chunks of ``text`` as the service synthesizes them.

        Empty or blank text yields nothing without a request. Closing the iterator
        early closes the connection, and the service stops synthesizing.

        Raises:
            RemoteServiceError: on an error status (the service's ``code``; retryable
                when the service says so, else for 429 and 5xx), a connection failure
                or a stream cut off before its end marker (retryable), or a malformed
                stream or a wrong sample rate (not retryable).
        """
        if not text.strip():
            return
        body = {"text": text, "voice": self.voice, "speed": self.speed}
        try:
            async with self._client.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    raise _status_error(response.status_code, await response.aread())
                rate = response.headers.get("x-sample-rate", "")
                if rate != str(self._sample_rate):
                    raise RemoteServiceError(
                        f"TTS service streams at {rate or 'an unstated rate'} Hz, "
                        f"expected {self._sample_rate}",
                        service="tts",
                    )
                decoder = FrameDecoder()
                async for data in response.aiter_bytes():
                    for payload in decoder.feed(data):
                        if len(payload) % 2:
                            raise ProtocolError(
                                f"a PCM16 chunk of {len(payload)} bytes", code="bad_frame"
                            )
                        yield payload
                decoder.finish()
        except ProtocolError as exc:
            raise RemoteServiceError(
                f"TTS service stream from {self.url}: {exc}",
                retryable=exc.code == "truncated",
                service="tts",
            ) from exc
        except self._transport_error as exc:
            raise RemoteServiceError(
                f"TTS service at {self.url} failed: {type(exc).__name__}: {exc}",
                retryable=True,
                service="tts",
            ) from exc


def _status_error(status: int, body: bytes) -> RemoteServiceError:
    try:
        detail: Any = json.loads(body)
        message = str(detail["error"])
        code = str(detail.get("code", ""))
        retryable = bool(detail.get("retryable", status == 429 or status >= 500))
    except (ValueError, KeyError, TypeError, AttributeError):
        message = body[:200].decode("utf-8", "replace") or "(empty body)"
        code = ""
        retryable = status == 429 or status >= 500
    error = RemoteServiceError(
        f"TTS service HTTP {status}: {message}", retryable=retryable, service="tts"
    )
    if code:
        error.code = code
    return error


def _endpoint(url: str, default_path: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"expected a {' or '.join(s + '://' for s in schemes)} URL, got {url!r}")
    if parts.path in ("", "/"):
        return f"{parts.scheme}://{parts.netloc}{default_path}"
    return url
