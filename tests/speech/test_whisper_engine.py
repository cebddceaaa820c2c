"""WhisperEngine with the real tiny.en model (slow: loads CTranslate2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from framecast.engines._pcm import read_wav_float32
from framecast.engines.whisper import WhisperEngine, _window_features
from framecast.exceptions import ConfigError, ModelNotInstalledError
from framecast.models import ModelStore

AUDIO = Path(__file__).parent.parent / "data" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text())
TRANSCRIPTS = {entry["file"]: entry["transcript"] for entry in MANIFEST}
HALF_SECOND = np.zeros(8_000, dtype=np.float32)
_DIGITS = {"7": "seven", "10": "ten"}


def _words(text: str) -> list[str]:
    return [_DIGITS.get(word, word) for word in re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()]


def _clip(name: str) -> np.ndarray:
    audio, _rate = read_wav_float32(AUDIO / name)
    return audio


def _joined(*names: str) -> np.ndarray:
    pieces: list[np.ndarray] = []
    for name in names:
        pieces += [_clip(name), HALF_SECOND]
    return np.concatenate(pieces[:-1])


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine(ModelStore().path("whisper-tiny.en"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_transcribes_each_clip_exactly_in_a_short_window(engine: WhisperEngine, name: str) -> None:
    result = engine.transcribe(_clip(name))

    assert _words(result.text) == _words(TRANSCRIPTS[name])
    assert result.window_s == 8.0
    assert result.duration == pytest.approx(len(_clip(name)) / 16_000)
    assert result.decode_ms > 0
    assert result.no_speech_prob < 0.3


@pytest.mark.slow
def test_audio_longer_than_the_window_is_transcribed_once_and_completely(
    engine: WhisperEngine,
) -> None:
    audio = _joined("goforward.wav", "librivox_0930.wav", "cards_003.wav")  # 8.6 s

    result = engine.transcribe(audio)

    words = _words(result.text)
    assert result.window_s == 11.0  # 8.6 s + 2 s margin, rounded up
    expected = "go forward ten meters he might even have been made amiable himself"
    assert words[:12] == _words(expected)
    assert words[12:14] == ["seven", "of"]  # tiny.en mishears "clubs" after the long pause
    assert len(words) == 15  # nothing repeated into the padding
    starts = [segment.start for segment in result.segments]
    assert starts == sorted(starts)
    assert all(0.0 <= s.start <= s.end <= result.duration for s in result.segments)


@pytest.mark.slow
def test_audio_beyond_thirty_seconds_uses_stock_windows(engine: WhisperEngine) -> None:
    sentence = _joined(*["librivox_0930.wav"] * 8)  # 30.2 s

    result = engine.transcribe(sentence)

    assert result.window_s == 30.0
    assert _words(result.text) == _words(TRANSCRIPTS["librivox_0930.wav"]) * 8


@pytest.mark.slow
def test_window_grows_with_the_audio(engine: WhisperEngine) -> None:
    assert engine.window_for(1.5) == 8.0
    assert engine.window_for(6.0) == 8.0
    assert engine.window_for(6.01) == 9.0
    assert engine.window_for(27.9) == 30.0
    assert engine.window_for(28.5) == 31.0  # more than 30: decoded the stock way


@pytest.mark.slow
def test_silence_gives_no_text(engine: WhisperEngine) -> None:
    # Without the no-speech check tiny.en writes "you" for digital silence.
    silent = engine.transcribe(np.zeros(32_000, dtype=np.float32))
    empty = engine.transcribe(np.zeros(0, dtype=np.float32))

    assert silent.text == ""
    assert silent.segments == ()
    assert silent.no_speech_prob > 0.6
    assert empty.text == ""
    assert empty.duration == 0.0


@pytest.mark.slow
def test_prompt_steers_the_spelling(engine: WhisperEngine) -> None:
    audio = _clip("cards_003.wav")

    plain = engine.transcribe(audio)
    prompted = engine.transcribe(audio, prompt="Ace of spades. Seven of clubs. Two of hearts.")

    assert plain.text.startswith("7")
    assert prompted.text.startswith("Seven")


@pytest.mark.slow
def test_int16_input_gives_the_same_text(engine: WhisperEngine) -> None:
    audio = _clip("goforward.wav")
    as_int16 = np.round(audio * 32768).astype(np.int16)

    assert engine.transcribe(as_int16).text == engine.transcribe(audio).text


@pytest.mark.slow
def test_warmup_runs_a_call(engine: WhisperEngine) -> None:
    assert engine.warmup() > 0


def test_missing_model_dir_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="framecast models fetch"):
        WhisperEngine(tmp_path / "nowhere")


def test_rejects_out_of_range_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="window_s"):
        WhisperEngine(tmp_path, window_s=0.5)
    with pytest.raises(ConfigError, match="beam_size"):
        WhisperEngine(tmp_path, beam_size=0)


def test_window_features_match_faster_whisper_and_pad_with_zeros() -> None:
    audio = _clip("goforward.wav")
    stock = FeatureExtractor()(audio)  # the audio's frames plus one, before 30 s padding
    content = stock.shape[-1] - 1

    ours = _window_features(audio, 800)

    assert ours.shape == (1, 80, 800)
    assert np.abs(ours[0, :, :content] - stock[:, :content]).max() < 1e-5
    assert not ours[0, :, content:].any()
