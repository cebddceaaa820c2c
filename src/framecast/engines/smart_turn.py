"""Smart Turn v3: has the user finished their turn, or are they just pausing?

Smart Turn is a small Whisper-encoder classifier over the last 8 s of the user's audio.
Its ONNX export takes waveform-normalized log-mel features (80 x 800) and returns the
probability that the turn is complete. It is good at short commands ("seven of clubs":
0.98 with no trailing silence) and weak on read prose, which may never cross 0.5, so
callers still need a silence timeout as a fallback.

Thread safety: ONNX Runtime sessions may be run from several threads at once, so one
engine serves every session; the engine keeps no per-call state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from framecast.engines._onnx import open_session
from framecast.engines._pcm import SAMPLE_RATE, to_float32_mono
from framecast.engines.mel import FRAMES_PER_SECOND, log_mel_spectrogram
from framecast.exceptions import ConfigError, EngineError

__all__ = ["SmartTurnEngine", "TurnPrediction"]

WINDOW_S = 8
_WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE
_INPUT_NAME = "input_features"


@dataclass(frozen=True, slots=True)
class TurnPrediction:
    """Smart Turn's verdict on the audio so far.

    Attributes:
        probability: probability that the user's turn is complete.
        complete: ``probability`` reached the engine's threshold.
        ms: wall time of features plus inference.
    """

    probability: float
    complete: bool
    ms: float


class SmartTurnEngine:
    """Blocking Smart Turn v3 inference on CPU with ONNX Runtime.

    Args:
        onnx_path: the Smart Turn ``.onnx`` file (e.g. ``smart-turn-v3.2-cpu.onnx``).
        threads: intra-op threads; one leaves the other core to STT or TTS, and a second
            thread saves under 10 % here.
        threshold: probability at or above which the turn counts as complete.

    Raises:
        ModelNotInstalledError: if ``onnx_path`` is not a file.
        ConfigError: if ``threads`` or ``threshold`` is out of range.
        EngineError: if ONNX Runtime cannot load the model.
    """

    def __init__(self, onnx_path: Path, *, threads: int = 1, threshold: float = 0.5) -> None:
        if threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"threshold must be within (0, 1), got {threshold}")
        self._session = _open_session(onnx_path, threads=threads)
        self.threshold = threshold

    def predict(self, pcm: npt.ArrayLike) -> TurnPrediction:
        """Score the user's audio so far; only the last 8 s count.

        Args:
            pcm: mono 16 kHz audio of the current user turn, float32 in [-1, 1] (int16
                arrays are scaled). Shorter audio is left-padded with silence.

        Raises:
            ValueError: if ``pcm`` is not 1-D.
            EngineError: if inference fails.
        """
        started = time.perf_counter()
        audio = to_float32_mono(pcm)[-_WINDOW_SAMPLES:]
        window = np.zeros(_WINDOW_SAMPLES, dtype=np.float32)
        window[_WINDOW_SAMPLES - audio.size :] = audio
        features = log_mel_spectrogram(window, WINDOW_S * FRAMES_PER_SECOND, normalize=True)
        try:
            (output,) = self._session.run(None, {_INPUT_NAME: features[None]})
        except Exception as exc:  # ORT raises its own Fail/InvalidArgument/... types
            raise EngineError(f"Smart Turn inference failed: {exc}", service="smart_turn") from exc
        # The export ends in a sigmoid: the output is already a probability.
        probability = float(np.asarray(output).reshape(-1)[0])
        return TurnPrediction(
            probability=probability,
            complete=probability >= self.threshold,
            ms=(time.perf_counter() - started) * 1000.0,
        )


def _open_session(onnx_path: Path, *, threads: int) -> Any:
    return open_session(onnx_path, threads=threads, what="Smart Turn model", service="smart_turn")
