"""Emotion backends: the label grid, prosody on synthetic tones and real clips, VADER
valence, and a user-supplied ONNX model the test builds itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import pytest
from onnx import TensorProto, helper

from framecast.engines._pcm import read_wav_float32
from framecast.engines.emotion import (
    EMOTION_LABELS,
    EmotionBackend,
    OnnxEmotionBackend,
    ProsodyLexicalBackend,
    label_for,
    measure_prosody,
)
from framecast.exceptions import ConfigError, EngineError, ModelNotInstalledError

AUDIO = Path(__file__).parent.parent / "data" / "audio"
RATE = 16_000
POSITIVE = {"happy", "excited", "calm"}
NEGATIVE = {"sad", "angry"}


def _steady_tone(seconds: float = 2.0, hz: float = 180.0) -> npt.NDArray[np.float32]:
    """A quiet, unbroken tone at one pitch: the least aroused 'voice' there is."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.1 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _lively_tone(seconds: float = 2.0) -> npt.NDArray[np.float32]:
    """Loud, gliding +-8 semitones around 220 Hz, in six bursts a second."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 220.0 * 2 ** (8 / 12 * np.sin(2 * np.pi * 2 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    bursts = (np.sin(2 * np.pi * 6 * t) > -0.2).astype(np.float64)
    return (0.5 * np.sin(phase) * bursts).astype(np.float32)


@pytest.fixture(scope="module")
def backend() -> ProsodyLexicalBackend:
    return ProsodyLexicalBackend()


@pytest.mark.parametrize(
    ("valence", "arousal", "label"),
    [
        (0.0, 0.0, "neutral"), (0.8, 0.0, "happy"), (0.8, 0.8, "excited"), (0.0, 0.8, "excited"),
        (-0.8, 0.0, "sad"), (-0.8, -0.8, "sad"), (-0.8, 0.8, "angry"), (0.0, -0.8, "calm"),
        (0.8, -0.8, "calm"),
    ],
)  # fmt: skip
def test_label_grid(valence: float, arousal: float, label: str) -> None:
    assert label_for(valence, arousal)[0] == label
    assert label in EMOTION_LABELS


def test_score_grows_deeper_inside_a_cell() -> None:
    edge = label_for(0.31, 0.0)
    deep = label_for(1.0, 0.0)
    assert edge[0] == deep[0] == "happy"
    assert 0.5 <= edge[1] < deep[1] <= 1.0


def test_yin_tracks_the_pitch_of_a_tone() -> None:
    for hz in (110.0, 180.0, 300.0):
        prosody = measure_prosody(_steady_tone(hz=hz))
        assert prosody.f0_median_hz == pytest.approx(hz, rel=0.02)
        assert prosody.f0_std_semitones < 0.1
        assert prosody.voiced_ratio > 0.9


def test_pitch_variance_and_bursts_raise_arousal(backend: ProsodyLexicalBackend) -> None:
    steady = backend.classify(_steady_tone(), "")
    lively = backend.classify(_lively_tone(), "")

    assert lively.features["f0_std_semitones"] > 4.0 > steady.features["f0_std_semitones"]
    assert lively.features["syllables_per_s"] > 4.0 > steady.features["syllables_per_s"]
    assert lively.features["arousal"] > 0.3 > -0.3 > steady.features["arousal"]
    assert (steady.label, lively.label) == ("calm", "excited")


def test_silence_and_empty_input_are_neutral(backend: ProsodyLexicalBackend) -> None:
    for audio in (np.zeros(RATE, dtype=np.float32), np.zeros(0, dtype=np.float32)):
        emotion = backend.classify(audio, "")
        assert emotion.label == "neutral"
        assert emotion.features["speech_s"] == 0.0


@pytest.mark.parametrize("clip", ["librivox_0930", "cards_003", "goforward"])
def test_real_clips_words_decide_valence(backend: ProsodyLexicalBackend, clip: str) -> None:
    audio, rate = read_wav_float32(AUDIO / f"{clip}.wav")
    assert rate == RATE

    plain = backend.classify(audio, "")
    loving = backend.classify(audio, "I love this, it's wonderful!")
    hating = backend.classify(audio, "This is terrible, I hate it.")

    assert plain.label in {"neutral", "calm"}  # read speech and commands, no sentiment
    assert 70.0 < plain.features["f0_median_hz"] < 200.0  # the three speakers are male
    assert loving.label in POSITIVE
    assert loving.features["valence"] > 0.5
    assert hating.label in NEGATIVE
    assert hating.features["valence"] < -0.5


def test_backends_satisfy_the_protocol(tmp_path: Path) -> None:
    model = _write_energy_model(tmp_path / "energy.onnx")
    backends: list[EmotionBackend] = [
        ProsodyLexicalBackend(),
        OnnxEmotionBackend(model, ["angry", "calm"]),
    ]
    for each in backends:
        assert each.classify(_steady_tone(), "ok").label in EMOTION_LABELS


def _write_energy_model(path: Path, *, input_name: str = "input_values") -> Path:
    """A 'speech emotion' model: logits = [k*(ms - t), -k*(ms - t)], ms = mean square.

    Loud input (mean square above t = 0.01, i.e. RMS above 0.1) scores 'angry' (label 0),
    quiet input 'calm' (label 1).
    """
    nodes = [
        helper.make_node("Mul", [input_name, input_name], ["squared"]),
        helper.make_node("ReduceMean", ["squared"], ["ms"], keepdims=1),  # [1, 1]
        helper.make_node("Sub", ["ms", "threshold"], ["centred"]),
        helper.make_node("Mul", ["centred", "weights"], ["logits"]),  # [1,1]*[2] -> [1,2]
    ]
    graph = helper.make_graph(
        nodes,
        "energy_ser",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, "n"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        initializer=[
            helper.make_tensor("threshold", TensorProto.FLOAT, [], [0.01]),
            helper.make_tensor("weights", TensorProto.FLOAT, [2], [400.0, -400.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_onnx_backend_loud_is_angry_quiet_is_calm(tmp_path: Path) -> None:
    backend = OnnxEmotionBackend(_write_energy_model(tmp_path / "m.onnx"), ["angry", "calm"])
    t = np.arange(RATE) / RATE
    loud = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)  # ms = 0.125
    quiet = (0.05 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)  # ms = 0.00125

    angry = backend.classify(loud, "")
    calm = backend.classify(quiet, "")

    assert (angry.label, calm.label) == ("angry", "calm")
    assert angry.score == pytest.approx(1.0, abs=1e-6)  # softmax of +-46
    assert calm.features["p_calm"] == pytest.approx(1 / (1 + np.exp(-2 * 400 * 0.00875)))
    assert calm.features["p_angry"] + calm.features["p_calm"] == pytest.approx(1.0)


def test_onnx_backend_resamples_and_picks_named_input(tmp_path: Path) -> None:
    model = _write_energy_model(tmp_path / "m.onnx", input_name="wave")
    backend = OnnxEmotionBackend(model, ["angry", "calm"], sample_rate=8000, input_name="wave")
    t = np.arange(RATE) / RATE
    loud = (0.5 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)
    assert backend.classify(loud, "").label == "angry"
    with pytest.raises(ConfigError, match="no input 'nope'"):
        OnnxEmotionBackend(model, ["angry", "calm"], input_name="nope")


def test_onnx_backend_rejects_label_mismatch_and_missing_file(tmp_path: Path) -> None:
    model = _write_energy_model(tmp_path / "m.onnx")
    backend = OnnxEmotionBackend(model, ["angry", "calm", "sad"])
    with pytest.raises(EngineError, match="2 logits for 3 labels"):
        backend.classify(_steady_tone(), "")
    with pytest.raises(ModelNotInstalledError, match="no emotion model"):
        OnnxEmotionBackend(tmp_path / "absent.onnx", ["a"])
    with pytest.raises(ConfigError, match="at least one label"):
        OnnxEmotionBackend(model, [])
