"""PCM conversions shared by the engines.

The wire and the WAV files carry 16-bit little-endian PCM; every model wants float32 in
[-1, 1). Keeping the conversions in one place keeps the scaling (1/32768) consistent, so
a round trip int16 -> float32 -> int16 is exact.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "SAMPLE_RATE",
    "float32_to_int16_bytes",
    "int16_bytes_to_float32",
    "read_wav_float32",
    "to_float32_mono",
]

SAMPLE_RATE = 16_000
"""The rate every speech-input engine expects (Whisper, Smart Turn, Silero)."""

_INT16_SCALE = 32768.0

Float32Array = npt.NDArray[np.float32]


def int16_bytes_to_float32(data: bytes | bytearray | memoryview) -> Float32Array:
    """Decode little-endian PCM16 bytes into float32 samples in [-1, 1).

    Raises:
        ValueError: if the byte count is odd (a torn sample).
    """
    if len(data) % 2:
        raise ValueError(f"PCM16 data must have an even byte count, got {len(data)}")
    samples = np.frombuffer(data, dtype="<i2")
    return (samples.astype(np.float32) / _INT16_SCALE).astype(np.float32, copy=False)


def float32_to_int16_bytes(pcm: npt.ArrayLike) -> bytes:
    """Encode float samples as little-endian PCM16, clipping to the int16 range."""
    scaled = np.asarray(pcm, dtype=np.float32) * _INT16_SCALE
    clipped = np.clip(np.rint(scaled), -32768, 32767)
    encoded: bytes = clipped.astype("<i2").tobytes()
    return encoded


def to_float32_mono(pcm: npt.ArrayLike) -> Float32Array:
    """Return ``pcm`` as a contiguous 1-D float32 array, without copying when it already is.

    Integer arrays are taken as PCM16 and scaled to [-1, 1).

    Raises:
        ValueError: if ``pcm`` is not one-dimensional.
    """
    array = np.asarray(pcm)
    if array.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        return (array.astype(np.float32) / _INT16_SCALE).astype(np.float32, copy=False)
    return np.ascontiguousarray(array, dtype=np.float32)


def read_wav_float32(path: Path) -> tuple[Float32Array, int]:
    """Read a mono PCM16 WAV file as float32 samples and its sample rate.

    Raises:
        ValueError: if the file is not mono 16-bit PCM.
    """
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(
                f"{path}: expected mono 16-bit PCM, got {wav.getnchannels()} channel(s) of "
                f"{8 * wav.getsampwidth()}-bit samples"
            )
        rate = wav.getframerate()
        data = wav.readframes(wav.getnframes())
    return int16_bytes_to_float32(data), rate
