"""Blocking Whisper speech-to-text on CPU, with an encoder window sized to the audio.

Stock faster-whisper pads every call to Whisper's 30 s window, and on a 2-core CPU the
encoder alone then costs ~220 ms even for one second of speech. CTranslate2 accepts a
shorter mel input, so :class:`WhisperEngine` computes its own features for a window of
``max(window_s, duration + margin_s)`` seconds (whole seconds) and calls the CTranslate2
model directly. On a 2-core CPU (tiny.en, int8) a 1.5-3.3 s utterance then takes
45-105 ms instead of 280-380 ms.

A short window makes Whisper more prone to repeating itself past the end of the audio.
Three guards keep that out of the transcript: the window always has ``margin_s`` of
padding after the audio, decoding is capped at a token budget proportional to the
duration, and the model decodes with timestamps so segments that start after the audio
has ended are dropped. Audio longer than 30 s minus the margin goes through
faster-whisper's own sequential 30 s decoding instead, so it is transcribed completely.

Thread safety: one engine (one CTranslate2 model) is meant to be shared by every session.
CTranslate2 queues calls from several Python threads onto ``num_workers`` model replicas,
each running with ``cpu_threads`` threads; on a 2-core machine keep ``num_workers=1`` so
calls run one after another with both cores instead of fighting over them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from loguru import logger

from framecast.engines._pcm import SAMPLE_RATE, to_float32_mono
from framecast.engines.mel import FRAMES_PER_SECOND, HOP_LENGTH, N_MELS, log_mel_spectrogram
from framecast.exceptions import ConfigError, EngineError, ModelNotInstalledError

__all__ = ["Segment", "Transcription", "WhisperEngine"]

_STOCK_WINDOW_S = 30.0
_MODEL_FILES = ("model.bin", "config.json")
# Whisper's timestamp tokens are 20 ms apart, counted from the start of the window.
_TIMESTAMP_STEP_S = 0.02
# Token budget: fast speech is ~4 words/s, ~1.3 tokens a word, plus two timestamps a segment.
_TOKENS_PER_SECOND = 10.0
_TOKEN_SLACK = 10


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of transcript with its start and end in seconds from the start of the audio."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Transcription:
    """What one :meth:`WhisperEngine.transcribe` call heard.

    Attributes:
        text: the whole transcript, stripped; empty when the audio holds no speech.
        segments: the transcript in timed pieces (Whisper's timestamp resolution, 20 ms).
        duration: seconds of audio transcribed.
        decode_ms: wall time of the call: features, encoder and decoder.
        window_s: encoder window used, in seconds (30.0 for audio decoded the stock way).
        no_speech_prob: Whisper's probability that the (first) window holds no speech.
    """

    text: str
    segments: tuple[Segment, ...]
    duration: float
    decode_ms: float
    window_s: float
    no_speech_prob: float


class WhisperEngine:
    """A faster-whisper / CTranslate2 Whisper model with short, per-call encoder windows.

    Args:
        model_dir: directory of a CTranslate2 Whisper model (``model.bin``, ``config.json``,
            ``tokenizer.json``, ``vocabulary.txt``), e.g. the model store's ``tiny.en``.
        cpu_threads: threads per model call.
        num_workers: calls that may run at once (one model replica each).
        compute_type: CTranslate2 weight type; ``int8`` is fastest on CPU.
        language: spoken language; English-only models accept only ``"en"``.
        beam_size: 1 for greedy decoding (fastest; what the latency budget assumes).
        window_s: shortest encoder window in seconds. Below ~8 s Whisper starts repeating
            itself on 2-3 s utterances.
        margin_s: padding kept after the audio when the audio is longer than
            ``window_s - margin_s``.
        no_speech_threshold: above this no-speech probability the transcript is empty.
            Whisper writes "you" or "." for silence with a no-speech probability over
            0.9, while speech scores below 0.1; Whisper's own extra log-probability test
            is left out because timestamp tokens drag real speech down to it too.

    Raises:
        ModelNotInstalledError: if ``model_dir`` lacks the model files.
        ConfigError: if a setting is out of range or the model cannot speak ``language``.
        EngineError: if CTranslate2 fails to load the model.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        cpu_threads: int = 2,
        num_workers: int = 1,
        compute_type: str = "int8",
        language: str = "en",
        beam_size: int = 1,
        window_s: float = 8.0,
        margin_s: float = 2.0,
        no_speech_threshold: float = 0.6,
    ) -> None:
        if not 1.0 <= window_s <= _STOCK_WINDOW_S:
            raise ConfigError(f"window_s must be within 1-30 s, got {window_s}")
        if not 0.0 <= margin_s < _STOCK_WINDOW_S / 2:
            raise ConfigError(f"margin_s must be within 0-15 s, got {margin_s}")
        if not 0.0 < no_speech_threshold <= 1.0:
            raise ConfigError(
                f"no_speech_threshold must be within (0, 1], got {no_speech_threshold}"
            )
        if beam_size < 1:
            raise ConfigError(f"beam_size must be at least 1, got {beam_size}")
        missing = [name for name in _MODEL_FILES if not (model_dir / name).is_file()]
        if missing:
            raise ModelNotInstalledError(
                f"no Whisper model at {model_dir} (missing {', '.join(missing)}); "
                "install it with `framecast models fetch` or pass the directory of a "
                "CTranslate2 Whisper model"
            )
        # Imported here so that importing framecast.engines does not need the speech extra.
        from faster_whisper import WhisperModel  # type: ignore[import-untyped]
        from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]

        try:
            self._model: Any = WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineError(
                f"could not load the Whisper model in {model_dir}: {exc}", service="whisper"
            ) from exc
        multilingual = bool(self._model.model.is_multilingual)
        if not multilingual and language != "en":
            raise ConfigError(
                f"the English-only model in {model_dir} cannot transcribe {language!r}"
            )
        self._tokenizer: Any = Tokenizer(
            self._model.hf_tokenizer, multilingual, task="transcribe", language=language
        )
        self._timestamp_begin = int(self._tokenizer.timestamp_begin)
        self._eot = int(self._tokenizer.eot)
        self._max_length = int(self._model.max_length)
        self._language = language
        self._beam_size = beam_size
        self._window_s = window_s
        self._margin_s = margin_s
        self._no_speech_threshold = no_speech_threshold
        logger.debug(
            "whisper engine: {} ({}, {} threads x {} workers, window {} s)",
            model_dir,
            compute_type,
            cpu_threads,
            num_workers,
            window_s,
        )

    def window_for(self, duration: float) -> float:
        """Return the encoder window (whole seconds) used for ``duration`` s of audio.

        A result above 30 s means the audio is decoded the stock way, in 30 s windows.
        """
        return max(self._window_s, float(math.ceil(duration + self._margin_s)))

    def transcribe(self, pcm: npt.ArrayLike, *, prompt: str | None = None) -> Transcription:
        """Transcribe a whole utterance (or the utterance so far); blocks for the model call.

        Args:
            pcm: mono 16 kHz audio, float32 in [-1, 1] (int16 arrays are scaled).
            prompt: text said just before this audio (e.g. the committed transcript), which
                Whisper takes as context for spelling and style.

        Returns:
            The transcript; empty text when Whisper finds no speech.

        Raises:
            ValueError: if ``pcm`` is not 1-D.
            EngineError: if the model call fails.
        """
        started = time.perf_counter()
        audio = to_float32_mono(pcm)
        duration = audio.size / SAMPLE_RATE
        window = self.window_for(duration)
        try:
            if audio.size == 0:
                segments: tuple[Segment, ...] = ()
                no_speech_prob = 1.0
                window = self._window_s
            elif window > _STOCK_WINDOW_S:
                segments, no_speech_prob = self._decode_stock(audio, prompt)
                window = _STOCK_WINDOW_S
            else:
                segments, no_speech_prob = self._decode_window(audio, duration, window, prompt)
        except RuntimeError as exc:
            raise EngineError(f"Whisper decoding failed: {exc}", service="whisper") from exc
        text = " ".join(segment.text for segment in segments)
        return Transcription(
            text=text,
            segments=segments,
            duration=duration,
            decode_ms=(time.perf_counter() - started) * 1000.0,
            window_s=window,
            no_speech_prob=no_speech_prob,
        )

    def warmup(self) -> float:
        """Run one short call so the first real one does not pay for allocations.

        Returns:
            The warm-up call's time in milliseconds.
        """
        noise = np.random.default_rng(0).normal(0.0, 0.01, SAMPLE_RATE).astype(np.float32)
        return self.transcribe(noise).decode_ms

    def _decode_window(
        self, audio: npt.NDArray[np.float32], duration: float, window: float, prompt: str | None
    ) -> tuple[tuple[Segment, ...], float]:
        import ctranslate2  # type: ignore[import-untyped]

        features = _window_features(audio, round(window * FRAMES_PER_SECOND))
        prompt_ids: list[int] = self._model.get_prompt(
            self._tokenizer, self._prompt_tokens(prompt), without_timestamps=False
        )
        budget = math.ceil(duration * _TOKENS_PER_SECOND) + _TOKEN_SLACK
        result: Any = self._model.model.generate(
            ctranslate2.StorageView.from_array(features),
            [prompt_ids],
            beam_size=self._beam_size,
            max_length=min(self._max_length, len(prompt_ids) + budget),
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        tokens = [int(token) for token in result.sequences_ids[0]]
        no_speech_prob = float(result.no_speech_prob)
        if no_speech_prob > self._no_speech_threshold:
            return (), no_speech_prob
        if len(tokens) >= budget:
            logger.debug("whisper hit its token budget ({}) on {:.2f} s", budget, duration)
        return self._segments(tokens, duration), no_speech_prob

    def _decode_stock(
        self, audio: npt.NDArray[np.float32], prompt: str | None
    ) -> tuple[tuple[Segment, ...], float]:
        # Long audio: faster-whisper's seek loop over 30 s windows; consume its lazy generator.
        pieces, _info = self._model.transcribe(
            audio,
            language=self._language,
            beam_size=self._beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            initial_prompt=prompt,
            no_speech_threshold=self._no_speech_threshold,
            log_prob_threshold=None,
        )
        segments: list[Segment] = []
        no_speech_probs: list[float] = []
        for piece in pieces:
            no_speech_probs.append(float(piece.no_speech_prob))
            text = str(piece.text).strip()
            if text:
                segments.append(Segment(start=float(piece.start), end=float(piece.end), text=text))
        return tuple(segments), no_speech_probs[0] if no_speech_probs else 1.0

    def _prompt_tokens(self, prompt: str | None) -> list[int]:
        if not prompt or not prompt.strip():
            return []
        return [int(token) for token in self._tokenizer.encode(" " + prompt.strip())]

    def _segments(self, tokens: Sequence[int], duration: float) -> tuple[Segment, ...]:
        """Split timestamped output into segments, dropping any that start after the audio.

        Output looks like ``<0.00> text <2.40><2.40> more text <4.00>``: text between a
        start and an end timestamp. A segment that starts at or after the end of the audio
        is the model repeating itself into the padding.
        """
        segments: list[Segment] = []
        start: float | None = None
        text_tokens: list[int] = []
        for token in (*tokens, self._eot):
            if token < self._timestamp_begin and token != self._eot:
                text_tokens.append(token)
                continue
            is_end = token == self._eot
            time_s = duration if is_end else (token - self._timestamp_begin) * _TIMESTAMP_STEP_S
            if text_tokens:
                segment_start = 0.0 if start is None else start
                if segment_start >= duration:
                    break
                text = str(self._tokenizer.decode(text_tokens)).strip()
                if text:
                    end = min(max(time_s, segment_start), duration)
                    segments.append(Segment(start=segment_start, end=end, text=text))
                text_tokens = []
                start = None
            else:
                start = time_s
        return tuple(segments)


def _window_features(audio: npt.NDArray[np.float32], n_frames: int) -> npt.NDArray[np.float32]:
    """Log-mel features of ``audio`` in a window of ``n_frames``, shaped (1, 80, n_frames).

    As faster-whisper does (and its models were evaluated with): the features and their
    8-decade floor cover the audio only, and the rest of the window is zero features
    rather than the features of digital silence. With silence-padded audio instead,
    whisper-base turned "seven of clubs" into "7F clubs".
    """
    content = min(audio.size // HOP_LENGTH, n_frames)
    window = np.zeros((1, N_MELS, n_frames), dtype=np.float32)
    window[0, :, :content] = log_mel_spectrogram(audio, audio.size // HOP_LENGTH + 1)[:, :content]
    return window
