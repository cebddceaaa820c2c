"""LlamaServer with a real GGUF model (slow: starts llama.cpp servers).

SmolLM2-135M keeps these tests quick; the behaviour under test (process lifecycle,
streaming, cancellation, slot pinning) does not depend on the model.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from framecast.engines.llm_server import LlamaServer, slot_options
from framecast.exceptions import EngineError, ModelNotInstalledError
from framecast.models import ModelStore

pytestmark = pytest.mark.slow

HISTORY = [
    {"role": "system", "content": "You are a concise, friendly voice assistant."},
    {"role": "user", "content": "I am planning a weekend trip to the mountains with friends."},
    {"role": "assistant", "content": "Nice! Pack layers, water and snacks, and check the weather."},
]


@pytest.fixture(scope="module")
def model() -> Path:
    return ModelStore().path("smollm2-135m")


@pytest.fixture(scope="module")
def server(model: Path) -> Iterator[LlamaServer]:
    with LlamaServer(model, n_ctx=1024, n_parallel=2, threads=2) as running:
        yield running


def _client(server: LlamaServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0)


def test_streams_tokens_and_survives_a_stream_closed_midway(server: LlamaServer) -> None:
    async def scenario() -> tuple[list[str], str]:
        async with _client(server) as client:
            stream = await client.chat.completions.create(
                model=server.alias,
                messages=[{"role": "user", "content": "Count from one to fifty in words."}],
                stream=True,
                max_tokens=200,
                temperature=0.0,
                extra_body=slot_options(0),
            )
            pieces: list[str] = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == 3:
                    break
            await stream.close()
            # the same slot must be freed and usable again
            reply = await client.chat.completions.create(
                model=server.alias,
                messages=[{"role": "user", "content": "Say hello."}],
                max_tokens=8,
                temperature=0.0,
                extra_body=slot_options(0),
            )
            return pieces, reply.choices[0].message.content or ""

    pieces, reply = asyncio.run(scenario())
    assert len(pieces) == 3
    assert reply.strip()


def test_pinned_slot_reuses_the_cached_history(server: LlamaServer) -> None:
    async def cached_tokens(client: AsyncOpenAI, question: str, slot: int) -> int:
        reply = await client.chat.completions.create(
            model=server.alias,
            messages=[*HISTORY, {"role": "user", "content": question}],
            max_tokens=1,
            temperature=0.0,
            extra_body=slot_options(slot),
        )
        assert reply.usage is not None
        details = reply.usage.prompt_tokens_details
        return (details.cached_tokens or 0) if details else 0

    async def scenario() -> tuple[int, int, int]:
        async with _client(server) as client:
            first = await cached_tokens(client, "Should we bring a first aid kit?", 1)
            same_slot = await cached_tokens(client, "Which shoes should we wear?", 1)
            other_slot = await cached_tokens(client, "Which shoes should we wear?", 0)
            return first, same_slot, other_slot

    first, same_slot, other_slot = asyncio.run(scenario())
    assert first < 10  # slot 1 never saw this conversation
    assert same_slot > 40  # the whole history prefix came from the KV cache
    assert other_slot < same_slot  # slot 0 holds another conversation


def test_reports_its_configuration(server: LlamaServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.base_url.endswith("/v1")
    assert server.n_parallel == 2
    assert server.alias == "local"


def test_async_lifecycle_is_idempotent_and_leaves_no_process(model: Path) -> None:
    async def scenario() -> int:
        server = LlamaServer(model, n_ctx=512)
        async with server:
            await server.start()  # already running: no second process
            pid = server.pid
            assert pid is not None
            async with _client(server) as client:
                models = await client.models.list()
                assert [m.id for m in models.data] == ["local"]
        await server.aclose()
        assert server.pid is None
        with pytest.raises(EngineError, match="not running"):
            _ = server.base_url
        return pid

    pid = asyncio.run(scenario())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_missing_model_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="framecast models fetch"):
        LlamaServer(tmp_path / "absent.gguf")


def test_unloadable_model_fails_with_the_server_stderr(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a gguf file" * 100)
    server = LlamaServer(bogus, startup_timeout_s=30)

    with pytest.raises(EngineError) as caught:
        server.start_sync()

    message = str(caught.value)
    assert "exited with code 1" in message
    assert "failed to load model" in message  # llama.cpp's own words, from stderr
    assert server.pid is None


def test_startup_timeout_stops_the_process(model: Path) -> None:
    server = LlamaServer(model, startup_timeout_s=0.001)  # no model loads in 1 ms

    with pytest.raises(EngineError, match="was not ready within 0.001 s"):
        server.start_sync()
    assert server.pid is None


def test_cancelled_start_stops_the_process(model: Path) -> None:
    async def scenario() -> int | None:
        server = LlamaServer(model)
        task = asyncio.create_task(server.start())
        await asyncio.sleep(0)  # start() has launched the child and awaits its first poll
        pid = server.pid
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.pid is None
        return pid

    pid = asyncio.run(scenario())
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
