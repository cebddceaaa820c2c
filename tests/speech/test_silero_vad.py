"""Silero VAD streams with the real model (slow: loads ONNX Runtime)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from framecast.engines._pcm import read_wav_float32
from framecast.engines.silero_vad import CHUNK_SAMPLES, SileroVAD, SileroVADStream
from framecast.exceptions import ModelNotInstalledError
from framecast.models import ModelStore

AUDIO = Path(__file__).parent.parent / "data" / "audio"
MANIFEST = {entry["file"]: entry for entry in json.loads((AUDIO / "manifest.json").read_text())}


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD(ModelStore().path("silero-vad"))


def _probabilities(stream: SileroVADStream, audio: np.ndarray) -> np.ndarray:
    chunks = audio[: audio.size // CHUNK_SAMPLES * CHUNK_SAMPLES].reshape(-1, CHUNK_SAMPLES)
    return np.array([stream.feed(chunk) for chunk in chunks])


def _chunk_centres_s(count: int) -> np.ndarray:
    return (np.arange(count) + 0.5) * CHUNK_SAMPLES / 16_000


@pytest.mark.slow
@pytest.mark.parametrize("name", ["goforward.wav", "librivox_0930.wav"])
def test_speech_is_high_and_leading_silence_low(vad: SileroVAD, name: str) -> None:
    entry = MANIFEST[name]
    audio, _rate = read_wav_float32(AUDIO / name)

    probabilities = _probabilities(vad.stream(), audio)

    centres = _chunk_centres_s(probabilities.size)
    inside = (centres > entry["speech_start_s"] + 0.1) & (centres < entry["speech_end_s"] - 0.1)
    leading = centres < entry["speech_start_s"] - 0.05
    assert probabilities[inside].mean() > 0.8
    assert probabilities[leading].max() < 0.3


@pytest.mark.slow
def test_digital_silence_is_not_speech(vad: SileroVAD) -> None:
    probabilities = _probabilities(vad.stream(), np.zeros(16_000, np.float32))

    assert probabilities.max() < 0.1


@pytest.mark.slow
def test_streams_keep_separate_state(vad: SileroVAD) -> None:
    speech, _rate = read_wav_float32(AUDIO / "goforward.wav")
    silence = np.zeros_like(speech)
    alone = _probabilities(vad.stream(), speech)

    talking, quiet = vad.stream(), vad.stream()
    chunks = speech[: alone.size * CHUNK_SAMPLES].reshape(-1, CHUNK_SAMPLES)
    interleaved = []
    for index, chunk in enumerate(chunks):
        quiet.feed(silence[index * CHUNK_SAMPLES : (index + 1) * CHUNK_SAMPLES])
        interleaved.append(talking.feed(chunk))

    assert np.array_equal(np.array(interleaved), alone)


@pytest.mark.slow
def test_reset_forgets_the_past(vad: SileroVAD) -> None:
    speech, _rate = read_wav_float32(AUDIO / "cards_003.wav")
    fresh = _probabilities(vad.stream(), speech)
    stream = vad.stream()
    _probabilities(stream, speech)

    stream.reset()

    assert np.array_equal(_probabilities(stream, speech), fresh)


@pytest.mark.slow
def test_context_carries_across_chunks(vad: SileroVAD) -> None:
    # The same chunk scores differently after speech than after silence: the stream
    # carries the LSTM state and the previous chunk's last 64 samples.
    speech, _rate = read_wav_float32(AUDIO / "goforward.wav")
    middle = speech[16_000 : 16_000 + CHUNK_SAMPLES]
    after_speech = vad.stream()
    _probabilities(after_speech, speech[:16_000])

    assert after_speech.feed(middle) != vad.stream().feed(middle)


@pytest.mark.slow
def test_feed_takes_exactly_one_chunk(vad: SileroVAD) -> None:
    with pytest.raises(ValueError, match="512"):
        vad.stream().feed(np.zeros(480, np.float32))


def test_missing_model_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="framecast models fetch"):
        SileroVAD(tmp_path / "silero.onnx")
