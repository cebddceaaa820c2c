"""KokoroEngine with the real Kokoro-82M int8 model (slow: loads ONNX models)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper import WhisperModel

from framecast.engines._pcm import int16_bytes_to_float32
from framecast.engines.kokoro import KokoroEngine
from framecast.exceptions import ConfigError, ModelNotInstalledError
from framecast.models import ModelStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine() -> KokoroEngine:
    store = ModelStore()
    return KokoroEngine(store.path("kokoro-int8"), store.path("kokoro-voices"), threads=2)


@pytest.fixture(scope="module")
def whisper() -> WhisperModel:
    path = ModelStore().path("whisper-tiny.en")
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def _resample_24k_to_16k(pcm: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    positions = np.arange(0, len(pcm) - 1, 1.5)
    return np.interp(positions, np.arange(len(pcm)), pcm).astype(np.float32)


def test_round_trip_through_whisper(engine: KokoroEngine, whisper: WhisperModel) -> None:
    chunks = list(engine.synthesize("Hello, how can I help you today?"))
    audio = int16_bytes_to_float32(b"".join(chunks))

    segments, _info = whisper.transcribe(
        _resample_24k_to_16k(audio), language="en", beam_size=1, temperature=0.0
    )
    text = " ".join(segment.text for segment in segments)

    assert _words(text) == "hello how can i help you today".split()
    assert 1.0 < len(audio) / engine.sample_rate < 3.0


def test_chunks_are_short_pcm16_pieces(engine: KokoroEngine) -> None:
    chunks = list(engine.synthesize("Sure."))
    chunk_bytes = 24_000 * 120 // 1000 * 2

    assert len(chunks) >= 2
    assert all(len(chunk) == chunk_bytes for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk_bytes
    assert len(chunks[-1]) % 2 == 0
    assert np.abs(int16_bytes_to_float32(b"".join(chunks))).max() > 0.05  # not silence


def test_sentences_are_synthesized_lazily_with_a_pause(
    engine: KokoroEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = b"".join(engine.synthesize("Yes."))
    calls: list[str] = []
    create = engine._kokoro.create

    def counting_create(text: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(text)
        return create(text, *args, **kwargs)

    monkeypatch.setattr(engine._kokoro, "create", counting_create)
    chunks: Iterator[bytes] = engine.synthesize("Yes. Yes.")
    first = next(chunks)
    assert calls == ["Yes."]  # the second sentence waits until the first is consumed
    both = first + b"".join(chunks)
    assert calls == ["Yes.", "Yes."]

    pause_bytes = 2 * round(0.25 * 24_000)
    assert len(both) == 2 * len(one) + pause_bytes
    pause = both[len(one) : len(one) + pause_bytes]
    assert pause == bytes(pause_bytes)


def test_empty_and_punctuation_only_text_yield_nothing(engine: KokoroEngine) -> None:
    assert list(engine.synthesize("")) == []
    assert list(engine.synthesize("   \n ")) == []
    assert list(engine.synthesize("...")) == []


def test_unknown_voice_is_rejected_before_iterating(engine: KokoroEngine) -> None:
    with pytest.raises(ConfigError, match="unknown Kokoro voice 'zz_nobody'.*af_heart"):
        engine.synthesize("Hi.", voice="zz_nobody")
    with pytest.raises(ConfigError, match="speed"):
        engine.synthesize("Hi.", speed=3.0)


def test_voices_and_sample_rate(engine: KokoroEngine) -> None:
    voices = engine.voices()
    assert {"af_heart", "am_michael", "bf_emma"} <= set(voices)
    assert voices == sorted(voices)
    assert engine.sample_rate == 24_000
    other = b"".join(engine.synthesize("Hi.", voice="am_michael"))
    assert other != b"".join(engine.synthesize("Hi.", voice="af_heart"))


def test_missing_files_name_the_fix() -> None:
    with pytest.raises(ModelNotInstalledError, match="framecast models fetch"):
        KokoroEngine("/nonexistent/kokoro.onnx", "/nonexistent/voices.npz")
