"""Standalone STT and TTS services, so the heavy models scale out on their own machines.

Each service loads one model, shares it between all its clients through a bounded
worker pool, and answers ``GET /health``::

    python -m framecast.services.stt_service --port 7003 --model whisper-tiny.en
    python -m framecast.services.tts_service --port 7002

The bot reaches them through :class:`~framecast.engines.remote.RemoteSTTEngine` and
:class:`~framecast.engines.remote.RemoteTTSEngine`, which plug into the same processors
as the local engines. The wire formats are described in :mod:`framecast.engines.remote`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TYPE_CHECKING, Protocol

from loguru import logger

if TYPE_CHECKING:
    from framecast.services.stt_service import STTService
    from framecast.services.tts_service import TTSService

__all__ = ["STTService", "Service", "TTSService", "configure_logging", "serve_until_signalled"]


class Service(Protocol):
    """What :func:`serve_until_signalled` runs."""

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


def configure_logging(level: str) -> None:
    """Send the service's log to stderr at ``level``."""
    logger.remove()
    logger.add(sys.stderr, level=level.upper())


async def serve_until_signalled(service: Service) -> None:
    """Start ``service``, run it until SIGINT or SIGTERM, then close it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        print(f"listening on {service.url} (Ctrl-C stops)", flush=True)
        await stop.wait()
    finally:
        await service.aclose()


def __getattr__(name: str) -> object:
    # Lazy, so that `python -m framecast.services.stt_service` does not find its own
    # module imported by the package first (runpy warns about that).
    if name == "STTService":
        from framecast.services.stt_service import STTService

        return STTService
    if name == "TTSService":
        from framecast.services.tts_service import TTSService

        return TTSService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
