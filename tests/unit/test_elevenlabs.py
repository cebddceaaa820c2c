"""ElevenLabsEngine: request shape, PCM re-alignment, error mapping, one real socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import httpx2
import pytest
from fakes.elevenlabs_server import FakeElevenLabsServer, sine_pcm16

from framecast.engines.elevenlabs import ElevenLabsEngine
from framecast.exceptions import ConfigError, RemoteServiceError

Handler = Callable[[httpx2.Request], httpx2.Response]


def _engine(handler: Handler, **kwargs: object) -> ElevenLabsEngine:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return ElevenLabsEngine("key-1", "voice-9", http_client=client, **kwargs)  # type: ignore[arg-type]


async def _collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


class _Pieces(httpx2.AsyncByteStream):
    """A response body that arrives in the given pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            self.sent += 1
            yield piece

    async def aclose(self) -> None:
        self.closed = True


def test_request_follows_the_documented_api() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, content=b"\x01\x00\x02\x00")

    engine = _engine(handler, voice_settings={"stability": 0.4, "speed": 1.1})
    chunks = asyncio.run(_collect(engine.synthesize("Hello there.")))

    assert b"".join(chunks) == b"\x01\x00\x02\x00"
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/v1/text-to-speech/voice-9/stream"
    assert request.url.params["output_format"] == "pcm_24000"
    assert request.headers["xi-api-key"] == "key-1"
    assert json.loads(request.content) == {
        "text": "Hello there.",
        "model_id": "eleven_flash_v2_5",
        "voice_settings": {"stability": 0.4, "speed": 1.1},
    }
    assert engine.sample_rate == 24_000


def test_chunks_are_realigned_to_whole_samples() -> None:
    pcm = bytes(range(20))
    pieces = [pcm[:3], pcm[3:4], pcm[4:11], pcm[11:20]]

    engine = _engine(lambda _req: httpx2.Response(200, stream=_Pieces(pieces)))
    chunks = asyncio.run(_collect(engine.synthesize("hi")))

    assert all(len(chunk) % 2 == 0 and chunk for chunk in chunks)
    assert b"".join(chunks) == pcm[:20]


def test_closing_the_iterator_early_closes_the_response() -> None:
    body = _Pieces([b"\x00\x01" * 100] * 50)
    engine = _engine(lambda _req: httpx2.Response(200, stream=body))

    async def scenario() -> bytes:
        chunks = engine.synthesize("a long text")
        assert isinstance(chunks, AsyncGenerator)
        first = await anext(chunks)
        await chunks.aclose()
        return first

    assert asyncio.run(scenario()) == b"\x00\x01" * 100
    assert body.closed
    assert body.sent < 50


def test_empty_text_sends_no_request() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("no request expected")

    assert asyncio.run(_collect(_engine(handler).synthesize("  \n"))) == []


@pytest.mark.parametrize(
    ("status", "body", "retryable", "detail"),
    [
        (
            401,
            {"detail": {"status": "invalid_api_key", "message": "Invalid key"}},
            False,
            "invalid_api_key: Invalid key",
        ),
        (
            422,
            {"detail": [{"loc": ["body", "text"], "msg": "field required"}]},
            False,
            "field required",
        ),
        (
            429,
            {"detail": {"status": "too_many_concurrent_requests", "message": "busy"}},
            True,
            "too_many_concurrent_requests",
        ),
        (500, None, True, "upstream exploded"),
        (503, {"detail": {"message": "overloaded"}}, True, "overloaded"),
    ],
)
def test_http_errors_map_to_remote_service_error(
    status: int, body: object, retryable: bool, detail: str
) -> None:
    def handler(_request: httpx2.Request) -> httpx2.Response:
        if body is None:
            return httpx2.Response(status, text="upstream exploded")
        return httpx2.Response(status, json=body)

    with pytest.raises(RemoteServiceError) as caught:
        asyncio.run(_collect(_engine(handler).synthesize("hi")))

    assert caught.value.retryable is retryable
    assert caught.value.service == "elevenlabs"
    assert f"HTTP {status}" in str(caught.value)
    assert detail in str(caught.value)


def test_connection_failure_is_retryable() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with pytest.raises(RemoteServiceError) as caught:
        asyncio.run(_collect(_engine(handler).synthesize("hi")))
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("", "v"), {}), (("k", ""), {}), (("k", "v"), {"output_format": "mp3_44100_128"})],
)
def test_bad_configuration_is_rejected(args: tuple[str, str], kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        ElevenLabsEngine(*args, **kwargs)  # type: ignore[arg-type]


def test_owned_client_is_closed_and_shared_client_is_not() -> None:
    async def scenario() -> tuple[bool, bool]:
        shared = httpx2.AsyncClient()
        async with ElevenLabsEngine("k", "v", http_client=shared):
            pass
        owned = ElevenLabsEngine("k", "v")
        await owned.aclose()
        await owned.aclose()  # idempotent
        shared_closed = shared.is_closed
        await shared.aclose()
        return shared_closed, owned._client.is_closed

    assert asyncio.run(scenario()) == (False, True)


def test_streams_from_a_local_server_over_a_socket() -> None:
    text = "Hi, how are you?"

    async def scenario() -> tuple[list[bytes], FakeElevenLabsServer]:
        async with FakeElevenLabsServer(api_key="secret") as server:
            async with ElevenLabsEngine("secret", "abc", base_url=server.url) as engine:
                return await _collect(engine.synthesize(text)), server

    chunks, server = asyncio.run(scenario())

    assert len(chunks) > 1
    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    assert b"".join(chunks) == sine_pcm16(1200 * len(text))
    (request,) = server.requests
    assert request.path == "/v1/text-to-speech/abc/stream"
    assert request.json() == {"text": text, "model_id": "eleven_flash_v2_5"}


def test_bad_key_against_the_local_server_is_not_retryable() -> None:
    async def scenario() -> None:
        async with FakeElevenLabsServer(api_key="secret") as server:
            async with ElevenLabsEngine("wrong", "abc", base_url=server.url) as engine:
                await _collect(engine.synthesize("hello"))

    with pytest.raises(RemoteServiceError) as caught:
        asyncio.run(scenario())
    assert caught.value.retryable is False
    assert "invalid_api_key" in str(caught.value)
