"""Engines: one model or remote service each, with no knowledge of frames or sessions.

Local engines (Whisper, Smart Turn, Silero, Kokoro, emotion) are plain blocking
classes: each takes explicit file paths (the model store resolves names elsewhere),
loads its model once, is shared by every session, and is called through a bounded
thread pool. ``ElevenLabsEngine`` streams over HTTP (async); ``LlamaServer`` runs the
embedded llama.cpp server as a child process.
"""

from __future__ import annotations

from framecast.engines.elevenlabs import ElevenLabsEngine
from framecast.engines.emotion import (
    Emotion,
    EmotionBackend,
    OnnxEmotionBackend,
    ProsodyLexicalBackend,
)
from framecast.engines.kokoro import KokoroEngine
from framecast.engines.llm_server import LlamaServer, slot_options
from framecast.engines.mel import log_mel_spectrogram
from framecast.engines.silero_vad import SileroVAD, SileroVADStream
from framecast.engines.smart_turn import SmartTurnEngine, TurnPrediction
from framecast.engines.whisper import Segment, Transcription, WhisperEngine

__all__ = [
    "ElevenLabsEngine",
    "Emotion",
    "EmotionBackend",
    "KokoroEngine",
    "LlamaServer",
    "OnnxEmotionBackend",
    "ProsodyLexicalBackend",
    "Segment",
    "SileroVAD",
    "SileroVADStream",
    "SmartTurnEngine",
    "Transcription",
    "TurnPrediction",
    "WhisperEngine",
    "log_mel_spectrogram",
    "slot_options",
]
