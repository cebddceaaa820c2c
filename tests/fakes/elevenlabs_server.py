"""A local stand-in for ElevenLabs' streaming TTS endpoint, on a real socket.

It implements just enough HTTP/1.1 (one request per connection, chunked response) to
serve ``POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_24000`` the way the
documented API does: it checks the ``xi-api-key`` header and the JSON body, answers a
bad key with 401 ``{"detail": {"status": "invalid_api_key", ...}}``, and streams PCM16
generated from a sine wave (50 ms of audio per character of text) in odd-sized pieces so
clients must re-align samples. Every request it sees is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeElevenLabsServer", "ReceivedRequest", "sine_pcm16"]

_PATH_PREFIX = "/v1/text-to-speech/"
_PATH_SUFFIX = "/stream"
_SAMPLES_PER_CHAR = 1200  # 50 ms at 24 kHz
_PIECE_BYTES = 4801  # odd on purpose: pieces end mid-sample


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """What the fake received: enough for tests to check the client's request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def sine_pcm16(n_samples: int, *, rate: int = 24_000, hz: float = 220.0) -> bytes:
    """PCM16 LE mono sine at a quarter of full scale (deterministic test audio)."""
    out = bytearray()
    for i in range(n_samples):
        value = int(8192 * math.sin(2 * math.pi * hz * i / rate))
        out += value.to_bytes(2, "little", signed=True)
    return bytes(out)


@dataclass
class FakeElevenLabsServer:
    """Serve the fake on 127.0.0.1, port chosen by the OS; use as ``async with``.

    Args:
        api_key: the only key accepted.
        status_override: when set, every authorised request gets this status with an
            ElevenLabs-shaped error body (to exercise 429/5xx handling over a socket).
    """

    api_key: str = "test-key"
    status_override: int | None = None
    requests: list[ReceivedRequest] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """Base URL to pass as the engine's ``base_url``."""
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def __aenter__(self) -> FakeElevenLabsServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            self.requests.append(request)
            await self._respond(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away (e.g. it closed the stream early)
        finally:
            writer.close()

    async def _respond(self, request: ReceivedRequest, writer: asyncio.StreamWriter) -> None:
        path = request.path
        if (
            request.method != "POST"
            or not path.startswith(_PATH_PREFIX)
            or not path.endswith(_PATH_SUFFIX)
        ):
            await _send_json(writer, 404, {"detail": "Not Found"})
            return
        if request.headers.get("xi-api-key") != self.api_key:
            await _send_json(
                writer,
                401,
                {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
            )
            return
        if self.status_override is not None:
            await _send_json(
                writer,
                self.status_override,
                {"detail": {"status": "fake_error", "message": "override"}},
            )
            return
        try:
            body = request.json()
            text = body["text"] if isinstance(body, dict) else None
        except (ValueError, KeyError):
            text = None
        formats = request.query.get("output_format", ["mp3_44100_128"])
        if not isinstance(text, str) or formats != ["pcm_24000"]:
            await _send_json(
                writer,
                422,
                {
                    "detail": [
                        {"loc": ["body", "text"], "msg": "bad request", "type": "value_error"}
                    ]
                },
            )
            return
        pcm = sine_pcm16(_SAMPLES_PER_CHAR * len(text))
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: audio/pcm\r\n"
            b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        for start in range(0, len(pcm), _PIECE_BYTES):
            piece = pcm[start : start + _PIECE_BYTES]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    parts = urlsplit(target)
    return ReceivedRequest(method, parts.path, parse_qs(parts.query), headers, body)


async def _send_json(writer: asyncio.StreamWriter, status: int, payload: object) -> None:
    data = json.dumps(payload).encode()
    writer.write(
        b"HTTP/1.1 %d Error\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, len(data), data)
    )
    await writer.drain()
