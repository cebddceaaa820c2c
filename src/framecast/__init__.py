"""framecast: typed frames through composable processors, for real-time voice agents.

The core (frames, processors, pipelines, sessions, clock, timelines) is importable
without any model runtime; speech processors live in :mod:`framecast.processors`.
"""

from framecast.boundary import Boundary, BoundedChannel
from framecast.clock import Clock, LoopClock, VirtualTimeLoop
from framecast.exceptions import (
    ConfigError,
    EngineError,
    FramecastError,
    ModelNotInstalledError,
    PipelineError,
    ProtocolError,
    RemoteServiceError,
    ServiceError,
)
from framecast.frames import (
    AudioIn,
    AudioOut,
    BotStartedSpeaking,
    BotStoppedSpeaking,
    CancelFrame,
    ControlFrame,
    DataFrame,
    EmotionTag,
    EndFrame,
    EndOfTurn,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMMessages,
    LLMText,
    MetricsFrame,
    PlaybackInterrupted,
    ReplyEnded,
    ReplyStarted,
    Sentence,
    StartFrame,
    SystemFrame,
    TextIn,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from framecast.pipeline import Parallel, Pipeline
from framecast.processor import Direction, Processor
from framecast.session import Session
from framecast.timeline import Timeline
from framecast.workers import WorkerPool

__version__ = "0.1.0"

__all__ = [
    "AudioIn",
    "AudioOut",
    "BotStartedSpeaking",
    "BotStoppedSpeaking",
    "Boundary",
    "BoundedChannel",
    "CancelFrame",
    "Clock",
    "ConfigError",
    "ControlFrame",
    "DataFrame",
    "Direction",
    "EmotionTag",
    "EndFrame",
    "EndOfTurn",
    "EngineError",
    "ErrorFrame",
    "Frame",
    "FramecastError",
    "InterruptionFrame",
    "LLMMessages",
    "LLMText",
    "LoopClock",
    "MetricsFrame",
    "ModelNotInstalledError",
    "Parallel",
    "Pipeline",
    "PlaybackInterrupted",
    "PipelineError",
    "Processor",
    "ProtocolError",
    "RemoteServiceError",
    "ReplyEnded",
    "ReplyStarted",
    "Sentence",
    "ServiceError",
    "Session",
    "StartFrame",
    "SystemFrame",
    "TextIn",
    "Timeline",
    "Transcript",
    "UserStartedSpeaking",
    "UserStoppedSpeaking",
    "VirtualTimeLoop",
    "WorkerPool",
    "__version__",
]
