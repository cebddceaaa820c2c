"""The STT and TTS services in-process with real models, driven by the real processors.

Slow: loads Whisper tiny.en and Kokoro-82M, and serves them on real sockets (port 0).
Blocking calls of the remote STT engine run in worker threads, never on the loop that
serves them.
"""

from __future__ import annotations

import asyncio
import json
import re
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx2
import numpy as np
import pytest
from websockets.asyncio.client import connect

from framecast.engines._pcm import int16_bytes_to_float32
from framecast.engines.kokoro import KokoroEngine
from framecast.engines.remote import FrameDecoder, RemoteSTTEngine, RemoteTTSEngine
from framecast.engines.whisper import WhisperEngine
from framecast.exceptions import RemoteServiceError
from framecast.frames import (
    AudioIn,
    AudioOut,
    ErrorFrame,
    Frame,
    ReplyEnded,
    Sentence,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from framecast.models import ModelStore
from framecast.processor import Processor
from framecast.processors import ElevenLabsTTS, WhisperSTT
from framecast.services.stt_service import STTService
from framecast.services.tts_service import TTSService
from framecast.session import Session
from framecast.workers import WorkerPool

pytestmark = pytest.mark.slow

AUDIO = Path(__file__).parent.parent / "data" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text())
TRANSCRIPTS = {entry["file"]: entry["transcript"] for entry in MANIFEST}
_DIGITS = {"7": "seven", "10": "ten"}
LONG_TEXT = (
    "This is the first sentence of a long answer. Here is a second one, a little longer "
    "than the first. And a third sentence, so that the stream goes on for a while."
)


def _words(text: str) -> list[str]:
    return [_DIGITS.get(w, w) for w in re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()]


def _pcm16(name: str) -> bytes:
    with wave.open(str(AUDIO / name), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        return wav.readframes(wav.getnframes())


@pytest.fixture(scope="module")
def whisper() -> WhisperEngine:
    return WhisperEngine(ModelStore().path("whisper-tiny.en"))


@pytest.fixture(scope="module")
def kokoro() -> KokoroEngine:
    store = ModelStore()
    return KokoroEngine(store.path("kokoro-int8"), store.path("kokoro-voices"), threads=2)


async def _run_until(
    processors: Sequence[Processor], frames: Sequence[Frame], done: Callable[[Frame], bool]
) -> tuple[list[Frame], list[Frame]]:
    """Push ``frames``, wait (bounded) for a frame that is ``done``; return (down, up)."""
    down: list[Frame] = []
    up: list[Frame] = []
    finished = asyncio.Event()

    async def on_output(frame: Frame) -> None:
        down.append(frame)
        if done(frame):
            finished.set()

    async def on_upstream(frame: Frame) -> None:
        up.append(frame)

    session = Session(list(processors), on_output=on_output, on_upstream=on_upstream)
    await session.start()
    try:
        for frame in frames:
            await session.push(frame)
        async with asyncio.timeout(60):
            await finished.wait()
    finally:
        await session.stop()
    return down, up


# --- STT ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cards_003.wav", "librivox_0930.wav"])
async def test_whisper_stt_with_the_remote_engine_transcribes_a_clip(
    whisper: WhisperEngine, name: str
) -> None:
    pcm = _pcm16(name)
    frames: list[Frame] = [UserStartedSpeaking(turn=0)]
    frames += [AudioIn(pcm=pcm[i : i + 3200], turn=0) for i in range(0, len(pcm), 3200)]
    frames.append(UserStoppedSpeaking(turn=0, silence_ms=200))
    pool = WorkerPool(1)
    async with STTService(whisper, port=0) as service:
        engine = RemoteSTTEngine(service.url)
        try:
            stt = WhisperSTT(engine, pool, partials=False)
            down, up = await _run_until(
                [stt], frames, lambda f: isinstance(f, Transcript) and f.final
            )
        finally:
            await asyncio.to_thread(engine.close)
            pool.close()
        assert service.requests == 1

    (final,) = [f for f in down if isinstance(f, Transcript)]
    assert _words(final.text) == _words(TRANSCRIPTS[name])
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_stt_bad_input_gets_an_error_and_the_connection_stays(whisper: WhisperEngine) -> None:
    async with STTService(whisper, port=0, max_audio_s=2.0) as service:
        async with connect(service.url) as ws:
            await ws.send("{not json")
            bad_json = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "transcribe", "id": 1}))
            await ws.send(b"\x00" * 3)
            odd = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "transcribe", "id": 2}))
            await ws.send(b"\x00\x00" * 32_001)
            too_long = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "transcribe", "id": 3, "prompt": None}))
            await ws.send(_pcm16("cards_003.wav"))
            result = json.loads(await ws.recv())

    assert (bad_json["type"], bad_json["id"], bad_json["code"]) == ("error", None, "bad_input")
    assert (odd["id"], odd["code"], odd["retryable"]) == (1, "bad_input", False)
    assert "even byte count" in odd["message"]
    assert (too_long["id"], too_long["code"]) == (2, "too_large")
    assert "2 s limit" in too_long["message"]
    assert (result["type"], result["id"]) == ("result", 3)
    assert _words(result["text"]) == ["seven", "of", "clubs"]
    assert result["decode_ms"] > 0
    assert all(0.0 <= start <= end <= 1.54 for start, end, _text in result["segments"])


async def test_remote_stt_errors_are_remote_service_errors(whisper: WhisperEngine) -> None:
    pool = WorkerPool(1)  # one thread: the engine's connection is per thread
    second = np.zeros(16_000, dtype=np.float32)
    try:
        async with STTService(whisper, port=0, max_audio_s=1.0) as service:
            engine = RemoteSTTEngine(service.url)
            with pytest.raises(RemoteServiceError, match="1 s limit") as too_long:
                await pool.run(engine.transcribe, np.concatenate([second, second]))
            silence = await pool.run(engine.transcribe, second)  # same connection, still usable
            await asyncio.to_thread(engine.close)
            url = service.url
        with pytest.raises(RemoteServiceError, match="cannot connect") as refused:
            await pool.run(RemoteSTTEngine(url).transcribe, second)
    finally:
        pool.close()

    assert (too_long.value.code, too_long.value.retryable) == ("too_large", False)
    assert silence.text == ""
    assert refused.value.retryable


async def test_remote_stt_reconnects_after_the_service_restarts(whisper: WhisperEngine) -> None:
    pool = WorkerPool(1)
    audio = int16_bytes_to_float32(_pcm16("goforward.wav"))
    try:
        async with STTService(whisper, port=0) as first:
            port = first.port
            engine = RemoteSTTEngine(first.url)
            before = await pool.run(engine.transcribe, audio)
        async with STTService(whisper, port=port) as second:
            after = await pool.run(engine.transcribe, audio)
            assert second.requests == 1
        await asyncio.to_thread(engine.close)
    finally:
        pool.close()

    assert _words(before.text) == _words(after.text) == ["go", "forward", "ten", "meters"]
    assert after.round_trip_ms >= after.decode_ms > 0


async def test_stt_service_survives_a_client_that_leaves_mid_request(
    whisper: WhisperEngine,
) -> None:
    pcm = _pcm16("librivox_0930.wav")
    async with STTService(whisper, port=0) as service:
        async with connect(service.url) as ws:
            await ws.send(json.dumps({"type": "transcribe", "id": 1}))
            await ws.send(pcm)  # and leave without waiting for the answer
        async with connect(service.url) as ws:
            await ws.send(json.dumps({"type": "transcribe", "id": 2}))
            await ws.send(pcm)
            reply = json.loads(await ws.recv())
        async with httpx2.AsyncClient() as client:
            health = (await client.get(f"http://127.0.0.1:{service.port}/health")).json()
            missing = await client.get(f"http://127.0.0.1:{service.port}/nope")

    assert (reply["type"], reply["id"]) == ("result", 2)
    assert _words(reply["text"]) == _words(TRANSCRIPTS["librivox_0930.wav"])
    assert health["status"] == "ok" and health["service"] == "stt"
    assert missing.status_code == 404


# --- TTS ------------------------------------------------------------------------------------


async def test_tts_processor_with_the_remote_engine_streams_speech(
    kokoro: KokoroEngine, whisper: WhisperEngine
) -> None:
    text = "Hello, how can I help you today? I hope you are well."
    async with TTSService(kokoro, port=0) as service:
        engine = RemoteTTSEngine(service.url)
        try:
            started = asyncio.get_running_loop().time()
            down, up = await _run_until(
                [ElevenLabsTTS(engine)],
                [Sentence(text=text, turn=0), ReplyEnded(turn=0)],
                lambda f: isinstance(f, ReplyEnded),
            )
        finally:
            await engine.aclose()
        assert (service.stats.completed, service.stats.active) == (1, 0)

    audio = [f for f in down if isinstance(f, AudioOut)]
    assert audio and all(f.sample_rate == 24_000 and f.pcm for f in audio)
    assert audio[0].text == text
    first_audio_s = audio[0].ts - started
    assert first_audio_s < 10.0  # the first sentence alone: ~0.5 s on an idle 2-core CPU
    # Streamed, not buffered: the second sentence was synthesized after the first was out.
    assert audio[-1].ts - audio[0].ts > 0.1
    pcm = int16_bytes_to_float32(b"".join(f.pcm for f in audio))
    at_16k = np.interp(np.arange(0, len(pcm) - 1, 1.5), np.arange(len(pcm)), pcm)
    heard = whisper.transcribe(at_16k.astype(np.float32)).text
    assert _words(heard)[:7] == "hello how can i help you today".split()
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_tts_bad_requests_get_clear_errors(kokoro: KokoroEngine) -> None:
    async with TTSService(kokoro, port=0) as service:
        async with RemoteTTSEngine(service.url, voice="zz_nobody") as engine:
            with pytest.raises(RemoteServiceError, match="unknown voice 'zz_nobody'") as voice:
                async for _chunk in engine.synthesize("Hello."):
                    pass
        async with httpx2.AsyncClient(base_url=service.url) as client:
            empty = await client.post("/tts/stream", json={"text": "  "})
            not_json = await client.post("/tts/stream", content=b"text=hi")
            wrong_method = await client.get("/tts/stream")
            health = await client.get("/health")

    assert (voice.value.code, voice.value.retryable) == ("unknown_voice", False)
    assert "af_heart" in str(voice.value)
    assert empty.status_code == 400
    assert empty.json() == {"error": "text must be a non-empty string", "code": "bad_input",
                            "retryable": False}  # fmt: skip
    assert (not_json.status_code, not_json.json()["code"]) == (400, "bad_input")
    assert wrong_method.status_code == 405
    assert health.json()["sample_rate"] == 24_000
    assert health.json()["requests"] == 3  # the voice, the empty text, the non-JSON body


async def test_tts_service_survives_a_client_that_hangs_up_mid_stream(
    kokoro: KokoroEngine,
) -> None:
    body = json.dumps({"text": LONG_TEXT}).encode()
    async with TTSService(kokoro, port=0) as service:
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(
            b"POST /tts/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        first = await reader.readuntil(b"\r\n")  # the size line of the first HTTP chunk
        writer.close()  # hang up with the rest of the answer still to come
        await writer.wait_closed()
        await service.wait_idle()
        after_hangup = (service.stats.aborted, service.stats.completed)

        async with RemoteTTSEngine(service.url) as engine:
            chunks = [chunk async for chunk in engine.synthesize("Still here.")]

    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"X-Sample-Rate: 24000" in head and b"Transfer-Encoding: chunked" in head
    assert int(first, 16) > 4
    assert after_hangup == (1, 0)
    assert chunks and sum(map(len, chunks)) > 24_000 * 2 * 0.3
    assert service.stats.completed == 1


async def test_tts_stream_is_length_prefixed_and_ends_with_a_zero_length(
    kokoro: KokoroEngine,
) -> None:
    async with TTSService(kokoro, port=0) as service:
        async with httpx2.AsyncClient(base_url=service.url) as client:
            response = await client.post("/tts/stream", json={"text": "Sure.", "speed": 1.2})

    decoder = FrameDecoder()
    payloads = decoder.feed(response.content)
    decoder.finish()
    assert response.status_code == 200
    assert response.headers["x-sample-rate"] == "24000"
    assert len(payloads) >= 2 and all(len(p) % 2 == 0 for p in payloads)
    assert response.content.endswith(b"\x00\x00\x00\x00")
