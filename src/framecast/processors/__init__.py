"""The speech processors of the design card, each a thin shell over a shared engine.

Engines (models, network clients) are created once per process and passed in; the
processors hold only per-session state. Importing this package needs no model
runtime: engines are imported where they are built (``framecast.engines``).
"""

from framecast.processors.emotion import EmotionBackend, EmotionTagger
from framecast.processors.gate import EnergyGate
from framecast.processors.llm import DEFAULT_SYSTEM_PROMPT, VLLMChat
from framecast.processors.sentences import SentenceAggregator
from framecast.processors.stt import STTEngine, WhisperSTT
from framecast.processors.tts import ElevenLabsTTS, KokoroTTS, SpeechSynth, TTSProcessor
from framecast.processors.turn import SmartTurn, TurnEngine

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "ElevenLabsTTS",
    "EmotionBackend",
    "EmotionTagger",
    "EnergyGate",
    "KokoroTTS",
    "STTEngine",
    "SentenceAggregator",
    "SmartTurn",
    "SpeechSynth",
    "TTSProcessor",
    "TurnEngine",
    "VLLMChat",
    "WhisperSTT",
]
