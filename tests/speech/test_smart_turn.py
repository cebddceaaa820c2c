"""SmartTurnEngine with the real Smart Turn v3.2 model (slow: loads ONNX Runtime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framecast.engines._pcm import read_wav_float32
from framecast.engines.smart_turn import SmartTurnEngine
from framecast.exceptions import ConfigError, ModelNotInstalledError
from framecast.models import ModelStore

AUDIO = Path(__file__).parent.parent / "data" / "audio"


def _clip(name: str) -> np.ndarray:
    audio, _rate = read_wav_float32(AUDIO / name)
    return audio


@pytest.fixture(scope="module")
def model_path() -> Path:
    return ModelStore().path("smart-turn-v3.2")


@pytest.fixture(scope="module")
def engine(model_path: Path) -> SmartTurnEngine:
    return SmartTurnEngine(model_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cards_003.wav", "goforward.wav"])
def test_finished_commands_are_complete(engine: SmartTurnEngine, name: str) -> None:
    prediction = engine.predict(_clip(name))

    assert prediction.probability > 0.9
    assert prediction.complete
    assert 0 < prediction.ms < 1000


@pytest.mark.slow
def test_prose_cut_mid_sentence_is_incomplete(engine: SmartTurnEngine) -> None:
    # "he might even have been ma-": the first 55 % of the LibriVox clip. (The full clip
    # also scores low, a known weakness on read prose; short commands score high at
    # almost any cut, so they cannot show "incomplete".)
    audio = _clip("librivox_0930.wav")

    prediction = engine.predict(audio[: int(0.55 * audio.size)])

    assert prediction.probability < 0.2
    assert not prediction.complete


@pytest.mark.slow
def test_only_the_last_eight_seconds_count(engine: SmartTurnEngine) -> None:
    command = _clip("cards_003.wav")
    long_turn = np.concatenate([_clip("librivox_0930.wav")] * 3 + [command])  # 11.4 s
    padded = np.concatenate([np.zeros(16_000, np.float32), command])

    assert engine.predict(long_turn).probability == engine.predict(long_turn[-128_000:]).probability
    assert engine.predict(padded).probability == engine.predict(command).probability


@pytest.mark.slow
def test_threshold_decides_complete(model_path: Path, engine: SmartTurnEngine) -> None:
    strict = SmartTurnEngine(model_path, threshold=0.999)
    audio = _clip("goforward.wav")

    lenient_prediction, strict_prediction = engine.predict(audio), strict.predict(audio)

    assert lenient_prediction.probability == strict_prediction.probability < 0.999
    assert lenient_prediction.complete
    assert not strict_prediction.complete


def test_missing_model_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="framecast models fetch"):
        SmartTurnEngine(tmp_path / "smart-turn.onnx")


def test_rejects_out_of_range_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="threshold"):
        SmartTurnEngine(tmp_path / "smart-turn.onnx", threshold=1.5)
    with pytest.raises(ConfigError, match="threads"):
        SmartTurnEngine(tmp_path / "smart-turn.onnx", threads=0)
