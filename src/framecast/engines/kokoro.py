"""Kokoro-82M text-to-speech as a blocking engine.

``KokoroEngine.synthesize`` is a plain generator: it is meant to be driven from a worker
thread, never on the event loop. Text is synthesized one sentence at a time, so the first
sentence can play while later ones are still being computed; each sentence's audio is
then cut into short PCM16 chunks so a consumer can stop between chunks on barge-in.
Kokoro itself does not stream inside a sentence (one ONNX run per phoneme batch), so the
first chunk of a sentence costs the whole sentence's synthesis: keep first sentences short.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from loguru import logger

from framecast.engines._onnx import open_session
from framecast.engines._pcm import Float32Array, float32_to_int16_bytes
from framecast.exceptions import ConfigError, EngineError, ModelNotInstalledError

if TYPE_CHECKING:
    from kokoro_onnx import Kokoro

__all__ = ["KOKORO_SAMPLE_RATE", "KokoroEngine"]

KOKORO_SAMPLE_RATE = 24_000
"""Kokoro-82M always produces mono audio at 24 kHz."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPEAKABLE = re.compile(r"\w")  # a sentence of punctuation only ("...") has nothing to say
_SPEED_RANGE = (0.5, 2.0)  # what the exported graph accepts (kokoro-onnx checks the same)


class KokoroEngine:
    """Kokoro-82M ONNX synthesis with an explicit thread budget.

    Args:
        model_path: the Kokoro ONNX graph (e.g. ``kokoro-v1.0.int8.onnx``).
        voices_path: the ``.npz`` of voice style vectors keyed by voice name.
        threads: onnxruntime intra-op threads; on a 2-core machine 2 is 1.7x faster than 1
            when nothing else computes, but leave a core free when STT/LLM run alongside.
        chunk_ms: length of each yielded PCM chunk (the last chunk of a sentence is shorter).
        sentence_pause_s: silence appended between sentences of one ``synthesize`` call,
            since Kokoro trims the silence at each sentence end.

    Raises:
        ModelNotInstalledError: if a file does not exist.
        ConfigError: if ``threads`` or ``chunk_ms`` is not positive.
        EngineError: if onnxruntime or kokoro-onnx cannot load the files.
    """

    def __init__(
        self,
        model_path: str | Path,
        voices_path: str | Path,
        *,
        threads: int = 2,
        chunk_ms: int = 120,
        sentence_pause_s: float = 0.25,
    ) -> None:
        for path in (Path(model_path), Path(voices_path)):
            if not path.is_file():
                raise ModelNotInstalledError(
                    f"no Kokoro file at {path}; install it with `framecast models fetch "
                    "kokoro-int8 kokoro-voices` or pass the right path"
                )
        if threads < 1 or chunk_ms < 1 or sentence_pause_s < 0:
            raise ConfigError(
                f"threads and chunk_ms must be positive and sentence_pause_s >= 0, got "
                f"threads={threads}, chunk_ms={chunk_ms}, sentence_pause_s={sentence_pause_s}"
            )
        from kokoro_onnx import Kokoro

        session = open_session(model_path, threads=threads, what="Kokoro model", service="kokoro")
        try:
            self._kokoro: Kokoro = Kokoro.from_session(session, str(voices_path))
        except Exception as exc:  # kokoro-onnx and numpy raise many unrelated types
            raise EngineError(
                f"cannot load Kokoro voices from {voices_path}: {exc}", service="kokoro"
            ) from exc
        self._voices = tuple(self._kokoro.get_voices())
        self._chunk_samples = KOKORO_SAMPLE_RATE * chunk_ms // 1000
        self._pause = np.zeros(round(sentence_pause_s * KOKORO_SAMPLE_RATE), dtype=np.float32)
        logger.debug(
            "Kokoro loaded from {} ({} voices, {} threads)", model_path, len(self._voices), threads
        )

    @property
    def sample_rate(self) -> int:
        """Rate of the PCM that :meth:`synthesize` yields (24 kHz)."""
        return KOKORO_SAMPLE_RATE

    def voices(self) -> list[str]:
        """Names of the voices in the voices file, sorted."""
        return list(self._voices)

    def warmup(self) -> None:
        """Run one short synthesis so the first real request does not pay ORT's first-run cost."""
        for _chunk in self.synthesize("Hello."):
            pass

    def synthesize(
        self, text: str, *, voice: str = "af_heart", speed: float = 1.0, lang: str = "en-us"
    ) -> Iterator[bytes]:
        """Synthesize ``text`` and return an iterator of PCM16 LE mono 24 kHz chunks.

        The arguments are checked now, the audio is computed lazily as the iterator is
        consumed (sentence by sentence), so drive it from a worker thread and stop
        iterating to abandon the rest. Text without a word character (empty, blank,
        "...") yields nothing.

        Raises:
            ConfigError: now, for an unknown voice (the message lists the valid ones) or a
                speed outside 0.5-2.0.
            EngineError: while iterating, if phonemization or the model fails.
        """
        if voice not in self._voices:
            raise ConfigError(
                f"unknown Kokoro voice {voice!r}; available: {', '.join(self._voices)}"
            )
        if not _SPEED_RANGE[0] <= speed <= _SPEED_RANGE[1]:
            raise ConfigError(f"Kokoro speed must be within {_SPEED_RANGE}, got {speed}")
        sentences = [s for s in _SENTENCE_END.split(text.strip()) if _SPEAKABLE.search(s)]
        return self._chunks(sentences, voice, speed, lang)

    def _chunks(self, sentences: list[str], voice: str, speed: float, lang: str) -> Iterator[bytes]:
        for index, sentence in enumerate(sentences):
            audio = self._sentence_audio(sentence, voice, speed, lang)
            if index < len(sentences) - 1:
                audio = np.concatenate([audio, self._pause])
            for start in range(0, audio.size, self._chunk_samples):
                yield float32_to_int16_bytes(audio[start : start + self._chunk_samples])

    def _sentence_audio(self, sentence: str, voice: str, speed: float, lang: str) -> Float32Array:
        try:
            audio, _rate = self._kokoro.create(sentence, voice, speed=speed, lang=lang)
        except Exception as exc:  # espeak, tokenizer and onnxruntime failures alike
            raise EngineError(
                f"Kokoro failed on {sentence!r} (voice {voice}, lang {lang}): {exc}",
                service="kokoro",
            ) from exc
        return np.asarray(audio, dtype=np.float32).reshape(-1)
