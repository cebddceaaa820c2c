"""Our numpy Whisper log-mel features: against pipecat's reference extractor, and by property."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from framecast.engines._pcm import float32_to_int16_bytes, int16_bytes_to_float32, read_wav_float32
from framecast.engines.mel import N_MELS, log_mel_spectrogram, mel_filterbank

AUDIO = Path(__file__).parent.parent / "data" / "audio"
CLIPS = [entry["file"] for entry in json.loads((AUDIO / "manifest.json").read_text())]
EIGHT_SECONDS = 128_000


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    """pipecat's copy of transformers' extractor, loaded by path (``import pipecat`` needs deps)."""
    spec = importlib.util.find_spec("pipecat")
    assert spec is not None, "pipecat-ai (the bench extra) is not installed"
    assert spec.submodule_search_locations
    source = Path(spec.submodule_search_locations[0]) / "audio/turn/smart_turn/_whisper_features.py"
    module_spec = importlib.util.spec_from_file_location("reference_whisper_features", source)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _left_padded(name: str) -> np.ndarray:
    audio, rate = read_wav_float32(AUDIO / name)
    assert rate == 16_000
    return np.pad(audio, (EIGHT_SECONDS - audio.size, 0))


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_reference_on_real_clips(reference: ModuleType, name: str, normalize: bool) -> None:
    audio = _left_padded(name)

    ours = log_mel_spectrogram(audio, 800, normalize=normalize)
    theirs = reference.compute_whisper_log_mel_features(audio, do_normalize=normalize)

    assert ours.shape == theirs.shape == (80, 800)
    assert ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-3


def test_filterbank_matches_reference(reference: ModuleType) -> None:
    bank = mel_filterbank()

    assert bank.shape == (N_MELS, 201)
    np.testing.assert_allclose(bank, reference._MEL_FILTERS.T, atol=1e-7)


def test_filterbank_rows_are_single_triangles() -> None:
    bank = mel_filterbank().astype(np.float64)

    assert (bank >= 0).all()
    peaks = bank.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # bands rise in frequency
    for row in bank:
        nonzero = np.flatnonzero(row)
        assert (np.diff(nonzero) == 1).all()  # one contiguous run


def test_short_audio_is_zero_padded_and_long_audio_truncated() -> None:
    rng = np.random.default_rng(1)
    speechlike = rng.normal(0, 0.1, 16_000).astype(np.float32)
    padded = np.concatenate([speechlike, np.zeros(8_000, np.float32)])

    assert np.array_equal(log_mel_spectrogram(speechlike, 150), log_mel_spectrogram(padded, 150))
    assert np.array_equal(log_mel_spectrogram(padded, 50), log_mel_spectrogram(speechlike, 50))
    assert log_mel_spectrogram(speechlike, 3000).shape == (80, 3000)


def test_dynamic_range_is_floored_at_eight_decades() -> None:
    tone = np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000).astype(np.float32)

    features = log_mel_spectrogram(tone, 200)

    assert features.max() - features.min() == pytest.approx(2.0, abs=1e-5)  # 8 decades / 4
    loudest_band = int(features[:, 50].argmax())
    peak_bin = int(mel_filterbank()[loudest_band].argmax())
    assert abs(peak_bin * 16_000 / 400 - 440) <= 40  # the 440 Hz tone lands in its band


def test_normalization_makes_features_gain_invariant() -> None:
    audio = _left_padded("goforward.wav")

    loud = log_mel_spectrogram(audio * 4.0, 800, normalize=True)
    quiet = log_mel_spectrogram(audio * 0.25, 800, normalize=True)
    plain_loud = log_mel_spectrogram(audio * 4.0, 800)
    plain_quiet = log_mel_spectrogram(audio * 0.25, 800)

    assert np.abs(loud - quiet).max() < 1e-3
    assert np.abs(plain_loud - plain_quiet).max() > 0.1  # without it, gain shows


def test_int16_input_is_scaled_like_pcm16_bytes() -> None:
    audio = _left_padded("cards_003.wav")
    as_int16 = np.frombuffer(float32_to_int16_bytes(audio), dtype="<i2")

    assert np.array_equal(int16_bytes_to_float32(as_int16.tobytes()), audio)
    assert np.array_equal(log_mel_spectrogram(as_int16, 800), log_mel_spectrogram(audio, 800))


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="1-D"):
        log_mel_spectrogram(np.zeros((2, 100), np.float32), 10)
    with pytest.raises(ValueError, match="n_frames"):
        log_mel_spectrogram(np.zeros(100, np.float32), 0)
