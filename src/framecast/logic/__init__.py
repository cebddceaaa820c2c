"""Sans-I/O decision logic: pure, synchronous units that processors wrap.

Nothing here reads a clock, touches a socket or loads a model: input goes in through
``feed``/``update`` with the time passed in, decisions come back as values. That keeps
the turn-taking rules fast and testable without an event loop.
"""

from __future__ import annotations

from framecast.logic.endpointing import (
    EndpointEvent,
    EnergyEndpointer,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    rms_int16,
)
from framecast.logic.sentences import SentenceSplitter, clean_for_speech
from framecast.logic.stable_prefix import Partial, StablePrefix

__all__ = [
    "EndpointEvent",
    "EnergyEndpointer",
    "Partial",
    "SentenceSplitter",
    "SpeechPaused",
    "SpeechResumed",
    "SpeechStarted",
    "SpeechStopped",
    "StablePrefix",
    "clean_for_speech",
    "rms_int16",
]
