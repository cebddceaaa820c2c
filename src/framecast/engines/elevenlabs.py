"""ElevenLabs streaming text-to-speech over its documented HTTP API.

One request per text: ``POST {base_url}/v1/text-to-speech/{voice_id}/stream?output_format=
pcm_24000`` with the key in the ``xi-api-key`` header and a JSON body ``{"text", "model_id",
"voice_settings"?}``. The response body is raw PCM16 LE mono streamed as it is generated.
Errors come back as JSON ``{"detail": {"status": ..., "message": ...}}`` (or a list of
validation problems for 422); they are mapped to :class:`RemoteServiceError` with
``retryable`` set for rate limits, timeouts and server faults only.

The engine is async (network I/O, no compute), unlike the local engines. The API key is
an argument: reading ``ELEVENLABS_API_KEY`` from the environment is the caller's job.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from loguru import logger

from framecast.engines._http import HttpEngine
from framecast.exceptions import ConfigError, RemoteServiceError

if TYPE_CHECKING:
    import httpx2

__all__ = ["DEFAULT_BASE_URL", "ElevenLabsEngine"]

DEFAULT_BASE_URL = "https://api.elevenlabs.io"

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})  # plus every 5xx
_CONNECT_TIMEOUT_S = 5.0
_READ_TIMEOUT_S = 20.0  # longest silence between two body chunks


class ElevenLabsEngine(HttpEngine):
    """Stream PCM16 speech for a text from ElevenLabs.

    Args:
        api_key: the account's API key (sent as ``xi-api-key``).
        voice_id: the voice to speak with.
        model_id: the TTS model; ``eleven_flash_v2_5`` is the low-latency one.
        base_url: API origin, replaceable for tests or proxies.
        output_format: a ``pcm_<rate>`` format; only raw PCM is supported, since the
            pipeline plays what it receives without decoding.
        voice_settings: optional ``voice_settings`` object sent with every request
            (``stability``, ``similarity_boost``, ``speed``, ...).
        http_client: an ``httpx2.AsyncClient`` to share; when omitted the engine owns one
            and closes it in :meth:`aclose`.

    Raises:
        ConfigError: for an empty key or voice, or a non-PCM output format.
    """

    def __init__(
        self,
        api_key: str,
        voice_id: str,
        *,
        model_id: str = "eleven_flash_v2_5",
        base_url: str = DEFAULT_BASE_URL,
        output_format: str = "pcm_24000",
        voice_settings: Mapping[str, float | bool] | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError("ElevenLabs needs an API key (set ELEVENLABS_API_KEY)")
        if not voice_id:
            raise ConfigError("ElevenLabs needs a voice_id")
        self._sample_rate = _pcm_rate(output_format)
        self._api_key = api_key
        self._voice_id = voice_id
        self._model_id = model_id
        self._url = f"{base_url.rstrip('/')}/v1/text-to-speech/{voice_id}/stream"
        self._output_format = output_format
        self._voice_settings = dict(voice_settings) if voice_settings else None
        super().__init__(
            http_client, connect_timeout_s=_CONNECT_TIMEOUT_S, read_timeout_s=_READ_TIMEOUT_S
        )

    @property
    def sample_rate(self) -> int:
        """Rate of the PCM that :meth:`synthesize` yields (from ``output_format``)."""
        return self._sample_rate

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield PCM16 LE mono chunks of ``text`` as ElevenLabs streams them.

        Chunk sizes follow the network, but every chunk holds whole samples (an even
        byte count). Empty or whitespace-only text yields nothing without a request.
        Closing the iterator early closes the HTTP response, which stops the generation.

        Raises:
            RemoteServiceError: on an HTTP error status (``retryable`` for 408/409/425/429
                and 5xx, not for 400/401/403/404/422) or a connection/timeout failure
                (retryable).
        """
        if not text.strip():
            return
        body: dict[str, object] = {"text": text, "model_id": self._model_id}
        if self._voice_settings is not None:
            body["voice_settings"] = self._voice_settings
        try:
            async with self._client.stream(
                "POST",
                self._url,
                params={"output_format": self._output_format},
                headers={"xi-api-key": self._api_key, "accept": "audio/pcm"},
                json=body,
            ) as response:
                if response.status_code >= 400:
                    raise _status_error(response.status_code, await response.aread())
                odd = b""
                async for data in response.aiter_bytes():
                    data = odd + data
                    whole = len(data) - len(data) % 2
                    odd = data[whole:]
                    if whole:
                        yield data[:whole]
                if odd:
                    logger.warning("ElevenLabs stream ended inside a sample; dropped 1 byte")
        except self._transport_error as exc:
            raise RemoteServiceError(
                f"ElevenLabs request failed: {type(exc).__name__}: {exc}",
                retryable=True,
                service="elevenlabs",
            ) from exc


def _pcm_rate(output_format: str) -> int:
    codec, _, rate = output_format.partition("_")
    if codec != "pcm" or not rate.isdigit():
        raise ConfigError(
            f"ElevenLabs output_format must be pcm_<rate> (e.g. pcm_24000), got {output_format!r}"
        )
    return int(rate)


def _status_error(status: int, body: bytes) -> RemoteServiceError:
    retryable = status in _RETRYABLE_STATUS or status >= 500
    return RemoteServiceError(
        f"ElevenLabs HTTP {status}: {_error_detail(body)}",
        retryable=retryable,
        service="elevenlabs",
    )


def _error_detail(body: bytes) -> str:
    """Best human-readable part of an error body: ``detail.status: detail.message``."""
    try:
        detail = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace") or "(empty body)"
    if isinstance(detail, Mapping):
        status = detail.get("status", "")
        message = detail.get("message", "")
        return f"{status}: {message}" if status else str(message)
    return json.dumps(detail)[:300]
