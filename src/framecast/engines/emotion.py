"""Speech-emotion tagging of one finished utterance: pluggable backends.

An :class:`EmotionBackend` takes the utterance audio (float32, 16 kHz, mono) and its final
transcript and returns one :class:`Emotion`. The tag is a *soft hint* for the LLM prompt;
nothing in the pipeline should branch hard on it.

:class:`ProsodyLexicalBackend` (the default) is a transparent heuristic, not a trained
speech-emotion model (none ships in a package this project can install):

* **Valence** (pleasant vs unpleasant) comes from the words only: VADER's compound
  sentiment of the transcript. Lexical sentiment therefore dominates the label. Sarcasm,
  negative news told cheerfully or a flat "fine." are not understood, and an empty
  transcript is neutral.
* **Arousal** (energetic vs subdued) comes from prosody measured with numpy: pitch
  variability (a YIN f0 tracker on voiced frames, spread in semitones), speaking rate
  (words per second of speech, or energy peaks per second, a syllable-rate proxy,
  without a transcript),
  loudness and its spread, plus a nudge for exclamation marks. Prosody moves the label
  along the arousal axis only (happy vs excited, sad vs angry, neutral vs calm).
* It cannot tell the speaker's baseline: a naturally loud, fast or melodic speaker reads
  as more aroused, and loudness depends on microphone gain. It knows nothing of fear,
  disgust or surprise, and it is unreliable on utterances under about a second.

Labels (valence row x arousal column, thresholds +-0.3 on both axes):

==========  =======  =======  =======
valence     low      mid      high
==========  =======  =======  =======
negative    sad      sad      angry
neutral     calm     neutral  excited
positive    calm     happy    excited
==========  =======  =======  =======

``score`` is how deep inside its cell the point lies, mapped to [0.5, 1]: a heuristic
strength for ranking, not a calibrated probability.

:class:`OnnxEmotionBackend` runs any user-supplied audio-classification ONNX model that
takes a raw waveform ``[1, n]`` and returns logits ``[1, n_labels]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from framecast.engines._onnx import open_session
from framecast.engines._pcm import SAMPLE_RATE, to_float32_mono
from framecast.exceptions import ConfigError, EngineError, ModelNotInstalledError

__all__ = [
    "EMOTION_LABELS",
    "Emotion",
    "EmotionBackend",
    "OnnxEmotionBackend",
    "Prosody",
    "ProsodyLexicalBackend",
    "label_for",
    "measure_prosody",
]

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

EMOTION_LABELS = ("neutral", "happy", "sad", "angry", "excited", "calm")
"""Every label :class:`ProsodyLexicalBackend` can return."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Emotion:
    """One utterance's emotion tag.

    ``features`` holds the numbers the label was derived from (for logs and metrics).
    """

    label: str
    score: float
    features: Mapping[str, float]


class EmotionBackend(Protocol):
    """Anything that can tag an utterance; called from a worker thread (may block)."""

    def classify(self, pcm_f32_16k: Float32Array, transcript: str) -> Emotion:
        """Tag one utterance: float32 mono 16 kHz audio plus its final transcript."""
        ...


# --- the label grid -------------------------------------------------------------------

_THRESHOLD = 0.3
_GRID = {  # (valence bin, arousal bin) -> label; bins are -1, 0, +1
    (-1, -1): "sad", (-1, 0): "sad", (-1, 1): "angry",
    (0, -1): "calm", (0, 0): "neutral", (0, 1): "excited",
    (1, -1): "calm", (1, 0): "happy", (1, 1): "excited",
}  # fmt: skip


def _bin_and_margin(value: float) -> tuple[int, float]:
    """Which third of [-1, 1] ``value`` is in, and how deep (0 at an inner edge, 1 deepest)."""
    value = min(1.0, max(-1.0, value))
    if value > _THRESHOLD:
        return 1, (value - _THRESHOLD) / (1.0 - _THRESHOLD)
    if value < -_THRESHOLD:
        return -1, (-_THRESHOLD - value) / (1.0 - _THRESHOLD)
    return 0, (_THRESHOLD - abs(value)) / _THRESHOLD


def label_for(valence: float, arousal: float) -> tuple[str, float]:
    """Map a (valence, arousal) point in [-1, 1]^2 to a label and a score in [0.5, 1]."""
    v_bin, v_margin = _bin_and_margin(valence)
    a_bin, a_margin = _bin_and_margin(arousal)
    return _GRID[(v_bin, a_bin)], 0.5 + 0.5 * min(v_margin, a_margin)


# --- prosody ---------------------------------------------------------------------------

_HOP = 160  # 10 ms at 16 kHz
_WINDOW = 320  # 20 ms integration window
_F0_MIN, _F0_MAX = 70.0, 400.0
_TAU_MIN = int(SAMPLE_RATE / _F0_MAX)
_TAU_MAX = int(SAMPLE_RATE / _F0_MIN)
_YIN_THRESHOLD = 0.15
_SILENCE_DB = -50.0  # frames quieter than this are never speech
_ACTIVE_RANGE_DB = 35.0  # and frames this far below the loudest one are background
_SMOOTH_FRAMES = 5  # 50 ms moving average of the energy envelope
_NUCLEUS_RISE_DB = 6.0  # an energy peak must rise and fall this much to count as a syllable


@dataclass(frozen=True, slots=True)
class Prosody:
    """Acoustic measurements of one utterance (all zero when nothing is voiced)."""

    rms_db_mean: float
    rms_db_std: float
    f0_median_hz: float
    f0_std_semitones: float
    voiced_ratio: float
    speech_s: float
    syllables_per_s: float


def _frames(pcm: Float32Array, length: int) -> Float64Array:
    """Frames of ``length`` samples every ``_HOP`` samples (zero-padded at the end)."""
    n_frames = max(1, 1 + (len(pcm) - _WINDOW) // _HOP)
    padded = np.zeros((n_frames - 1) * _HOP + length, dtype=np.float64)
    padded[: len(pcm)] = pcm[: len(padded)]
    windows = np.lib.stride_tricks.sliding_window_view(padded, length)[::_HOP]
    return np.asarray(windows[:n_frames], dtype=np.float64)


def _yin_f0(frames: Float64Array) -> Float64Array:
    """Per-frame f0 in Hz by YIN (de Cheveigne & Kawahara 2002), 0 where unvoiced.

    The difference function d(tau) = sum (x_j - x_{j+tau})^2 over a ``_WINDOW`` of each
    frame is expanded into energies and a cross-correlation computed with one FFT.
    """
    head = frames[:, :_WINDOW]
    size = 1 << int(math.ceil(math.log2(frames.shape[1] + _WINDOW)))
    spectrum = np.fft.rfft(frames, size) * np.conj(np.fft.rfft(head, size))
    cross = np.fft.irfft(spectrum, size)[:, : _TAU_MAX + 1]  # sum_j x_j x_{j+tau}
    squares = np.cumsum(np.pad(frames**2, ((0, 0), (1, 0))), axis=1)
    taus = np.arange(_TAU_MAX + 1)
    energy_shifted = squares[:, taus + _WINDOW] - squares[:, taus]  # sum_j x_{j+tau}^2
    diff = energy_shifted[:, :1] + energy_shifted - 2.0 * cross
    diff[:, 0] = 0.0
    # cumulative mean normalised difference: d'(tau) = d(tau) * tau / sum_{k<=tau} d(k)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(running, 1e-12)
    f0 = np.zeros(len(frames))
    for i, row in enumerate(cmnd):
        below = np.flatnonzero(row[_TAU_MIN:] < _YIN_THRESHOLD)
        if below.size == 0:
            continue
        tau = int(below[0]) + _TAU_MIN
        while tau + 1 <= _TAU_MAX and row[tau + 1] < row[tau]:  # slide to the local minimum
            tau += 1
        if 0 < tau < _TAU_MAX:  # parabolic interpolation between neighbours
            left, mid, right = row[tau - 1], row[tau], row[tau + 1]
            bend = left - 2 * mid + right
            offset = 0.5 * (left - right) / bend if bend > 0 else 0.0
        else:
            offset = 0.0
        f0[i] = SAMPLE_RATE / (tau + offset)
    return f0


def measure_prosody(pcm_f32_16k: Float32Array) -> Prosody:
    """Energy, pitch and rhythm statistics of one utterance at 16 kHz."""
    pcm = to_float32_mono(pcm_f32_16k)
    if len(pcm) < _WINDOW + _TAU_MAX:
        return Prosody(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    frames = _frames(pcm, _WINDOW + _TAU_MAX)
    rms_db = 10.0 * np.log10(np.mean(frames[:, :_WINDOW] ** 2, axis=1) + 1e-12)
    active = rms_db > max(_SILENCE_DB, float(rms_db.max()) - _ACTIVE_RANGE_DB)
    if not active.any():
        return Prosody(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    first, last = np.flatnonzero(active)[[0, -1]]
    speech_s = max(float(last - first + 1) * _HOP / SAMPLE_RATE, 0.3)
    syllables = _count_energy_peaks(rms_db, floor_db=float(rms_db.max()) - _ACTIVE_RANGE_DB)
    f0 = _yin_f0(frames[active])
    voiced = f0[f0 > 0]
    if voiced.size >= 3:
        median = float(np.median(voiced))
        semitones = np.clip(12.0 * np.log2(voiced / median), -12.0, 12.0)
        f0_std = float(np.std(semitones))
    else:
        median = f0_std = 0.0
    return Prosody(
        rms_db_mean=float(np.mean(rms_db[active])),
        rms_db_std=float(np.std(rms_db[active])),
        f0_median_hz=median,
        f0_std_semitones=f0_std,
        voiced_ratio=voiced.size / int(active.sum()),
        speech_s=speech_s,
        syllables_per_s=syllables / speech_s,
    )


def _count_energy_peaks(rms_db: Float64Array, *, floor_db: float) -> int:
    """Count envelope peaks that rise and then fall ``_NUCLEUS_RISE_DB``: ~syllable nuclei."""
    kernel = np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES
    envelope = np.convolve(rms_db, kernel, mode="same")
    count, rising, low, high = 0, True, float(envelope[0]), float(envelope[0])
    for value in envelope.tolist():
        if rising:
            low = min(low, value)
            if value >= low + _NUCLEUS_RISE_DB and value > floor_db:
                rising, high, count = False, value, count + 1
        else:
            high = max(high, value)
            if value <= high - _NUCLEUS_RISE_DB:
                rising, low = True, value
    return count


def _scaled(value: float, centre: float, spread: float) -> float:
    return min(1.0, max(-1.0, (value - centre) / spread))


# Rough centres for conversational speech; (centre, spread) per cue.
_PITCH_SPREAD_ST = (2.5, 2.0)
_WORDS_PER_S = (2.5, 1.2)
_SYLLABLES_PER_S = (4.0, 1.5)
_LOUDNESS_DB = (-24.0, 10.0)
_LOUDNESS_SPREAD_DB = (6.0, 4.0)


class ProsodyLexicalBackend:
    """The default heuristic: lexical valence (VADER) plus prosodic arousal (numpy).

    See the module docstring for what it can and cannot tell. Stateless and cheap
    (a few ms per second of audio), so one instance can serve every session.
    """

    def __init__(self) -> None:
        # Imported here so that importing framecast.engines does not need the speech extra.
        from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
            SentimentIntensityAnalyzer,
        )

        self._vader = SentimentIntensityAnalyzer()

    def classify(self, pcm_f32_16k: Float32Array, transcript: str) -> Emotion:
        """Tag one utterance; see :class:`EmotionBackend`."""
        prosody = measure_prosody(pcm_f32_16k)
        text = transcript.strip()
        valence = float(self._vader.polarity_scores(text)["compound"]) if text else 0.0
        words = len(text.split())
        words_per_s = words / prosody.speech_s if words and prosody.speech_s else 0.0
        arousal = self._arousal(prosody, words_per_s, text)
        label, score = label_for(valence, arousal)
        features = {
            "valence": valence,
            "arousal": arousal,
            "words_per_s": words_per_s,
            "rms_db_mean": prosody.rms_db_mean,
            "rms_db_std": prosody.rms_db_std,
            "f0_median_hz": prosody.f0_median_hz,
            "f0_std_semitones": prosody.f0_std_semitones,
            "voiced_ratio": prosody.voiced_ratio,
            "syllables_per_s": prosody.syllables_per_s,
            "speech_s": prosody.speech_s,
        }
        return Emotion(label=label, score=score, features=features)

    @staticmethod
    def _arousal(prosody: Prosody, words_per_s: float, text: str) -> float:
        exclaims = 0.25 * min(text.count("!"), 2)
        if prosody.speech_s == 0.0:  # nothing audible: only the text can say anything
            return min(1.0, exclaims)
        cues = [
            (1.0, _scaled(prosody.f0_std_semitones, *_PITCH_SPREAD_ST) if prosody.f0_median_hz
             else 0.0),
            (1.0, _scaled(words_per_s, *_WORDS_PER_S) if words_per_s
             else _scaled(prosody.syllables_per_s, *_SYLLABLES_PER_S)),
            (0.5, _scaled(prosody.rms_db_mean, *_LOUDNESS_DB)),  # depends on mic gain
            (0.5, _scaled(prosody.rms_db_std, *_LOUDNESS_SPREAD_DB)),
        ]  # fmt: skip
        weighted = sum(weight * cue for weight, cue in cues) / sum(w for w, _ in cues)
        return float(min(1.0, max(-1.0, weighted + exclaims)))


# --- user-supplied ONNX models ---------------------------------------------------------


class OnnxEmotionBackend:
    """Any waveform-in, logits-out speech-emotion ONNX model.

    Args:
        model_path: the ONNX file; its input takes float32 ``[1, n]`` raw audio and its
            first output is logits ``[1, len(labels)]``.
        labels: the class names in logit order.
        sample_rate: the rate the model was trained at; 16 kHz input is linearly
            resampled to it when it differs.
        input_name: the graph input to feed (default: the first input).
        normalize: scale each utterance to zero mean and unit variance first, as
            wav2vec2-style feature extractors do.
        threads: onnxruntime intra-op threads.

    Raises:
        ModelNotInstalledError: if the file is missing.
        ConfigError: if ``labels`` is empty or the input name is unknown.
        EngineError: if onnxruntime cannot load the model.
    """

    def __init__(
        self,
        model_path: str | Path,
        labels: Sequence[str],
        *,
        sample_rate: int = SAMPLE_RATE,
        input_name: str | None = None,
        normalize: bool = False,
        threads: int = 1,
    ) -> None:
        if not Path(model_path).is_file():
            raise ModelNotInstalledError(f"no emotion model at {model_path}")
        if not labels:
            raise ConfigError("an emotion model needs at least one label")
        self._session = open_session(
            model_path, threads=threads, what="emotion model", service="emotion"
        )
        names = [node.name for node in self._session.get_inputs()]
        self._input = input_name or names[0]
        if self._input not in names:
            raise ConfigError(f"emotion model has no input {self._input!r}; inputs: {names}")
        self._labels = tuple(labels)
        self._rate = sample_rate
        self._normalize = normalize

    def classify(self, pcm_f32_16k: Float32Array, transcript: str) -> Emotion:
        """Tag one utterance from its audio alone (``transcript`` is ignored).

        Raises:
            EngineError: if inference fails or the logits do not match ``labels``.
        """
        audio = to_float32_mono(pcm_f32_16k)
        if self._rate != SAMPLE_RATE and len(audio):
            n_out = max(1, round(len(audio) * self._rate / SAMPLE_RATE))
            positions = np.linspace(0, len(audio) - 1, n_out)
            audio = np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)
        if self._normalize:
            audio = ((audio - audio.mean()) / (audio.std() + 1e-7)).astype(np.float32)
        try:
            outputs = self._session.run(None, {self._input: audio[None, :]})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EngineError(f"emotion model failed: {exc}", service="emotion") from exc
        logits = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
        if logits.size != len(self._labels):
            raise EngineError(
                f"emotion model returned {logits.size} logits for {len(self._labels)} labels",
                service="emotion",
            )
        exp = np.exp(logits - logits.max())
        probs = exp / exp.sum()
        best = int(np.argmax(probs))
        features = {f"p_{label}": float(p) for label, p in zip(self._labels, probs, strict=True)}
        return Emotion(label=self._labels[best], score=float(probs[best]), features=features)
