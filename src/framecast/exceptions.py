"""The framecast error tree.

Every error framecast raises on purpose derives from :class:`FramecastError`, so
callers can catch the library's failures without catching programming errors::

    FramecastError
    ├── ConfigError              bad setting or combination of settings
    ├── ModelNotInstalledError   a model file is missing; the message names the fix
    ├── ModelFetchError          `framecast models fetch` failed (download, checksum, tool missing)
    ├── PipelineError            misuse of the pipeline API (linking, lifecycle)
    ├── ProtocolError            malformed client input (bad frame, bad JSON, ...)
    └── ServiceError             a stage's engine or remote service failed
        ├── EngineError          a local model call failed
        └── RemoteServiceError   a remote endpoint failed (LLM server, ElevenLabs, STT/TTS service)

Foreign errors are mapped at the boundary (``raise ServiceError(...) from exc``).
:class:`ServiceError` carries ``retryable`` so a caller knows whether trying again
can help (a refused connection may; a bad API key will not). Only the pipeline
runner turns errors into :class:`~framecast.frames.ErrorFrame` values.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EngineError",
    "FramecastError",
    "ModelFetchError",
    "ModelNotInstalledError",
    "PipelineError",
    "ProtocolError",
    "RemoteServiceError",
    "ServiceError",
]


class FramecastError(Exception):
    """Base of every error framecast raises on purpose.

    ``code`` is a short machine-readable name, sent to clients in ``error`` events.
    """

    code: str = "error"


class ConfigError(FramecastError):
    """A setting is invalid or settings contradict each other."""

    code = "config"


class ModelNotInstalledError(FramecastError):
    """A model is missing from the model store; the message says which command fixes it."""

    code = "model_not_installed"


class ModelFetchError(FramecastError):
    """Fetching a model failed: a download, a checksum or a needed tool (pip, npm)."""

    code = "model_fetch"


class PipelineError(FramecastError):
    """The pipeline API was misused (e.g. a processor linked twice, pushing before start)."""

    code = "pipeline"


class ProtocolError(FramecastError):
    """A client sent something the protocol does not allow."""

    code = "bad_input"

    def __init__(self, message: str, *, code: str = "bad_input") -> None:
        super().__init__(message)
        self.code = code


class ServiceError(FramecastError):
    """A stage's engine or service failed.

    Args:
        message: what failed, for people.
        retryable: whether the same call may succeed later.
        service: the failing stage or endpoint, for logs and error events.
    """

    code = "service"

    def __init__(self, message: str, *, retryable: bool = False, service: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.service = service


class EngineError(ServiceError):
    """A local model call (STT, TTS, turn detection, ...) failed."""

    code = "engine"


class RemoteServiceError(ServiceError):
    """A remote endpoint (LLM server, ElevenLabs, remote STT/TTS) failed or is unreachable."""

    code = "remote_service"
