"""The ``/ws/audio`` wire protocol, without I/O (see docs/PROTOCOL.md; it is public).

:class:`Decoder` turns what a client sends into typed inputs, or raises
:class:`~framecast.exceptions.ProtocolError` with a code for the ``error`` event.
:func:`event` builds server events. Both are pure and tested without sockets.

Client → server: binary = PCM16 LE mono 16 kHz, a whole number of samples; text =
one JSON object with ``type`` in {``text``, ``hello``}. Unknown types are an error
the connection survives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from framecast.exceptions import ProtocolError

__all__ = [
    "SAMPLE_RATE_IN",
    "AudioChunk",
    "Decoder",
    "Hello",
    "UserText",
    "event",
]

SAMPLE_RATE_IN = 16_000
_MAX_TEXT_CHARS = 4000


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Microphone audio from the client."""

    pcm: bytes


@dataclass(frozen=True, slots=True)
class UserText:
    """A typed utterance (skips STT and turn detection)."""

    text: str


@dataclass(frozen=True, slots=True)
class Hello:
    """The optional first message; ``settings`` may carry e.g. ``voice``."""

    client: str = ""
    version: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


ClientMessage = AudioChunk | UserText | Hello


class Decoder:
    """Validates and decodes client messages.

    Args:
        max_binary_bytes: largest accepted audio message (1 MiB by default).
    """

    def __init__(self, *, max_binary_bytes: int = 1 << 20) -> None:
        self.max_binary_bytes = max_binary_bytes

    def decode(self, message: bytes | str) -> ClientMessage:
        """One WebSocket message in, one typed input out.

        Raises:
            ProtocolError: with ``code`` ``bad_audio``, ``too_large``, ``bad_json``,
                ``bad_message`` or ``unknown_type``.
        """
        if isinstance(message, bytes | bytearray | memoryview):
            return self._audio(bytes(message))
        return self._text(message)

    def _audio(self, data: bytes) -> AudioChunk:
        if len(data) > self.max_binary_bytes:
            raise ProtocolError(
                f"audio message of {len(data)} bytes is over the {self.max_binary_bytes}-byte "
                "limit; send 20-100 ms chunks",
                code="too_large",
            )
        if len(data) % 2:
            raise ProtocolError(
                f"audio must be PCM16 (2 bytes a sample); got an odd {len(data)}-byte message",
                code="bad_audio",
            )
        return AudioChunk(data)

    def _text(self, message: str) -> ClientMessage:
        try:
            payload = json.loads(message)
        except ValueError as exc:
            raise ProtocolError(f"text messages must be JSON: {exc}", code="bad_json") from exc
        if not isinstance(payload, dict):
            raise ProtocolError("a text message must be a JSON object", code="bad_message")
        kind = payload.get("type")
        if kind == "text":
            text = payload.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ProtocolError(
                    '"text" needs a non-empty string field "text"', code="bad_message"
                )
            if len(text) > _MAX_TEXT_CHARS:
                raise ProtocolError(
                    f"text is longer than {_MAX_TEXT_CHARS} characters", code="too_large"
                )
            return UserText(text.strip())
        if kind == "hello":
            settings = payload.get("settings", {})
            if not isinstance(settings, dict):
                raise ProtocolError('"settings" must be an object', code="bad_message")
            extra = {
                k: v
                for k, v in payload.items()
                if k not in ("type", "client", "version", "settings")
            }
            return Hello(
                client=str(payload.get("client", "")),
                version=str(payload.get("version", "")),
                settings={**extra, **settings},
            )
        raise ProtocolError(f"unknown message type {kind!r}", code="unknown_type")


def event(kind: str, **fields: Any) -> str:
    """A server event as the JSON text to send."""
    return json.dumps({"type": kind, **fields}, separators=(",", ":"), ensure_ascii=False)
