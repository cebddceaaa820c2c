"""Silero VAD: a per-512-sample speech probability, streamed.

The Silero ONNX model is recurrent: each call takes the new 512 samples (32 ms at 16 kHz)
prefixed with the previous call's last 64 samples, plus the LSTM state, and returns the
new state. Without that 64-sample context it outputs ~0 everywhere. One
:class:`SileroVAD` holds the ONNX session (shared, thread-safe); each audio stream gets
its own :class:`SileroVADStream` carrying state and context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from framecast.engines._onnx import open_session
from framecast.engines._pcm import SAMPLE_RATE, to_float32_mono
from framecast.exceptions import ConfigError, EngineError

__all__ = ["CHUNK_SAMPLES", "SileroVAD", "SileroVADStream"]

CHUNK_SAMPLES = 512
"""Samples per :meth:`SileroVADStream.feed` call (32 ms at 16 kHz)."""

_CONTEXT_SAMPLES = 64
_STATE_SHAPE = (2, 1, 128)


class SileroVAD:
    """The Silero VAD model, loaded once and shared by every stream.

    Args:
        onnx_path: the ``silero_vad.onnx`` file.
        threads: intra-op threads; the model is tiny, one is plenty.

    Raises:
        ModelNotInstalledError: if ``onnx_path`` is not a file.
        ConfigError: if ``threads`` is below 1.
        EngineError: if ONNX Runtime cannot load the model.
    """

    def __init__(self, onnx_path: Path, *, threads: int = 1) -> None:
        if threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        self._session = _open_session(onnx_path, threads=threads)
        self._sample_rate = np.array(SAMPLE_RATE, dtype=np.int64)

    def stream(self) -> SileroVADStream:
        """Start a new stream with fresh state (one per audio source)."""
        return SileroVADStream(self)

    def _run(
        self, window: npt.NDArray[np.float32], state: npt.NDArray[np.float32]
    ) -> tuple[float, npt.NDArray[np.float32]]:
        try:
            probability, new_state = self._session.run(
                None, {"input": window[None], "state": state, "sr": self._sample_rate}
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidArgument/... types
            raise EngineError(f"Silero VAD inference failed: {exc}", service="vad") from exc
        return float(np.asarray(probability).reshape(-1)[0]), np.asarray(new_state, np.float32)


class SileroVADStream:
    """Speech probabilities for one audio stream, 512 samples at a time.

    Not thread-safe: feed one stream from one thread at a time.
    """

    def __init__(self, vad: SileroVAD) -> None:
        self._vad = vad
        self._window = np.zeros(_CONTEXT_SAMPLES + CHUNK_SAMPLES, dtype=np.float32)
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)

    def feed(self, pcm: npt.ArrayLike) -> float:
        """Return the probability that the next 512 samples hold speech, and advance.

        Args:
            pcm: exactly 512 mono samples at 16 kHz, float32 in [-1, 1] (int16 is scaled).

        Raises:
            ValueError: if ``pcm`` is not 512 samples of 1-D audio.
            EngineError: if inference fails.
        """
        chunk = to_float32_mono(pcm)
        if chunk.size != CHUNK_SAMPLES:
            raise ValueError(f"Silero VAD takes {CHUNK_SAMPLES} samples a call, got {chunk.size}")
        # Context: the last 64 samples of the previous chunk (zeros at the start).
        self._window[:_CONTEXT_SAMPLES] = self._window[-_CONTEXT_SAMPLES:]
        self._window[_CONTEXT_SAMPLES:] = chunk
        probability, self._state = self._vad._run(self._window, self._state)
        return probability

    def reset(self) -> None:
        """Forget the stream's past, as if it had just started."""
        self._window.fill(0.0)
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)


def _open_session(onnx_path: Path, *, threads: int) -> Any:
    return open_session(onnx_path, threads=threads, what="Silero VAD model", service="vad")
