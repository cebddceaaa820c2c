"""Whisper-style log-mel features in numpy, for Whisper windows of any length and Smart Turn.

faster-whisper's own extractor pads every window to 30 s and keeps its window length in
shared mutable state, and transformers is too heavy a dependency, so the engines compute
features here. The recipe is Whisper's: a centred 400-point STFT (periodic Hann, reflect
padding) every 160 samples at 16 kHz, power spectrum, an 80-band Slaney mel filterbank,
``log10`` clamped at 1e-10, a floor 8 (decades) below the maximum, then ``(x + 4) / 4``.
Smart Turn additionally normalizes the waveform to zero mean and unit variance first
(transformers' ``do_normalize``).

Everything runs in float32: the frames are a strided view, one batched ``rfft`` does all
of them, and the window and filterbank are built once.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from framecast.engines._pcm import SAMPLE_RATE, to_float32_mono

__all__ = [
    "FRAMES_PER_SECOND",
    "HOP_LENGTH",
    "N_FFT",
    "N_MELS",
    "log_mel_spectrogram",
    "mel_filterbank",
]

N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH

_POWER_FLOOR = 1e-10
_DYNAMIC_RANGE_DECADES = 8.0
_NORMALIZE_EPS = 1e-7

# Slaney's mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above it.
_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _LINEAR_HZ_PER_MEL
_MELS_PER_LOG_STEP = 27.0 / np.log(6.4)


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = hz / _LINEAR_HZ_PER_MEL
    logarithmic = _LOG_START_MEL + np.log(np.maximum(hz, _LOG_START_HZ) / _LOG_START_HZ) * (
        _MELS_PER_LOG_STEP
    )
    return np.where(hz < _LOG_START_HZ, linear, logarithmic)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = mel * _LINEAR_HZ_PER_MEL
    logarithmic = _LOG_START_HZ * np.exp(
        (np.maximum(mel, _LOG_START_MEL) - _LOG_START_MEL) / _MELS_PER_LOG_STEP
    )
    return np.where(mel < _LOG_START_MEL, linear, logarithmic)


@cache
def mel_filterbank() -> npt.NDArray[np.float32]:
    """Return the (80, 201) Slaney mel filterbank over 0-8 kHz, area-normalized.

    Each row is a triangle between two neighbouring band edges, scaled by
    ``2 / (right - left)`` so every band integrates to about the same energy.
    The result is cached and read-only.
    """
    bin_hz = np.arange(N_FFT // 2 + 1, dtype=np.float64) * (SAMPLE_RATE / N_FFT)
    edges_mel = np.linspace(0.0, float(_hz_to_mel(np.array(SAMPLE_RATE / 2.0))), N_MELS + 2)
    edges_hz = _mel_to_hz(edges_mel)
    left, centre, right = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz[None, :] - left) / (centre - left)
    falling = (right - bin_hz[None, :]) / (right - centre)
    triangles = np.clip(np.minimum(rising, falling), 0.0, None)
    bank = (triangles * (2.0 / (right - left))).astype(np.float32)
    bank.setflags(write=False)
    return bank


@cache
def _hann_window() -> npt.NDArray[np.float32]:
    # Periodic Hann (as torch.hann_window): the symmetric window of N + 1 points, minus the last.
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    window.setflags(write=False)
    return window


def log_mel_spectrogram(
    pcm: npt.ArrayLike, n_frames: int, *, normalize: bool = False
) -> npt.NDArray[np.float32]:
    """Compute Whisper log-mel features for exactly ``n_frames`` frames (100 per second).

    The audio is zero-padded at the end or truncated to ``n_frames * 160`` samples first,
    so the floor (max - 8) is taken over the window the model sees.

    Args:
        pcm: mono audio at 16 kHz, float in [-1, 1] (int16 arrays are scaled).
        n_frames: output frames; 3000 for Whisper's stock 30 s window, 800 for 8 s.
        normalize: normalize the padded waveform to zero mean and unit variance first,
            as Smart Turn's training features were.

    Returns:
        float32 array of shape ``(80, n_frames)``, values roughly in [-1, 1.5].

    Raises:
        ValueError: if ``pcm`` is not 1-D or ``n_frames`` is below 1.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    audio = to_float32_mono(pcm)
    n_samples = n_frames * HOP_LENGTH
    window_audio = np.zeros(n_samples, dtype=np.float32)
    kept = min(audio.size, n_samples)
    window_audio[:kept] = audio[:kept]
    if normalize:
        window_audio -= window_audio.mean()
        window_audio /= np.sqrt(window_audio.var() + _NORMALIZE_EPS)

    # Centred frames: reflect-pad N_FFT / 2 on each side; frame i starts at i * HOP_LENGTH.
    padded = np.pad(window_audio, N_FFT // 2, mode="reflect")
    frames = sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    spectrum = np.fft.rfft(frames * _hann_window(), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2  # (n_frames, 201)

    mel = power.astype(np.float32, copy=False) @ mel_filterbank().T  # (n_frames, 80)
    log_mel = np.log10(np.maximum(mel, _POWER_FLOOR))
    np.maximum(log_mel, log_mel.max() - _DYNAMIC_RANGE_DECADES, out=log_mel)
    log_mel += 4.0
    log_mel /= 4.0
    return np.ascontiguousarray(log_mel.T, dtype=np.float32)
