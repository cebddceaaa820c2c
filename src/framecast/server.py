"""The voice bot's server: ``/ws/audio`` sessions plus ``/``, ``/health`` and ``/metrics``.

One ``websockets`` server does both: plain HTTP GETs are answered in
``process_request`` before any upgrade, and ``/ws/audio`` upgrades run one
session each. A session costs a pipeline of small processors; the models are
shared (:class:`~framecast.bot.Services`). Above ``max_sessions`` a new
connection is refused with HTTP 503 and a JSON reason, before the upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import Callable
from importlib import resources
from typing import Any

from loguru import logger
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from framecast.bot import PipelineFactory, Services, build_pipeline
from framecast.config import Settings
from framecast.metrics import LOOP_LAG, SESSIONS, render
from framecast.session import Session
from framecast.transports.websocket import WebSocketTransport

__all__ = ["VoiceBotServer", "serve_bot"]

_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
    )
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "")
    return Response(status, reason, headers, body)


def _json(status: int, payload: dict[str, Any]) -> Response:
    return _response(status, json.dumps(payload).encode(), "application/json")


class VoiceBotServer:
    """Serves the voice bot over HTTP + WebSocket.

    Args:
        services: started shared services.
        host: address to bind.
        port: TCP port (0 = any free port; see :attr:`port` once started).
        pipeline: builds each session's processors (default: the full voice bot).
    """

    def __init__(
        self,
        services: Services,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        pipeline: PipelineFactory = build_pipeline,
    ) -> None:
        self.services = services
        self._factory = pipeline
        self._host = host
        self._port = port
        self._server: Server | None = None
        self._sessions: set[asyncio.Task[Any]] = set()
        self._static = resources.files("framecast.transports") / "static"
        self._lag_probe: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            return self._port
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        """Address of the browser client."""
        return f"http://{self._host}:{self.port}/"

    @property
    def active_sessions(self) -> int:
        """Sessions currently connected."""
        return len(self._sessions)

    async def start(self) -> None:
        """Start listening."""
        max_bytes = self.services.settings.max_message_bytes
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._route,
            compression=None,  # PCM does not compress; deflate would only cost CPU
            max_size=4 * max_bytes,  # over the limit: an error event; far over: close 1009
            max_queue=16,
        )
        self._lag_probe = asyncio.create_task(self._probe_loop_lag(), name="loop-lag probe")

    async def _probe_loop_lag(self, period: float = 0.1) -> None:
        """Export how late the loop runs a timer: a blocked loop delays every session."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + period
            await asyncio.sleep(period)
            LOOP_LAG.observe(max(0.0, loop.time() - due))

    async def aclose(self) -> None:
        """Stop accepting, end every session (their tasks are joined)."""
        if self._lag_probe is not None:
            self._lag_probe.cancel()
            await asyncio.wait({self._lag_probe})
            self._lag_probe = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        """Run until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # --- HTTP ---------------------------------------------------------------------------

    async def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/ws/audio":
            if not self.services.ready:
                return _json(503, {"error": "the bot is still starting; try again shortly",
                                   "code": "starting"})  # fmt: skip
            limit = self.services.settings.max_sessions
            if self.active_sessions >= limit:
                return _json(503, {"error": f"server is full ({limit} sessions); try again later",
                                   "code": "too_many_sessions"})  # fmt: skip
            return None
        if path == "/health":
            health = await self.services.health()
            health["sessions"] = self.active_sessions
            return _json(200 if health["status"] == "ok" else 503, health)
        if path == "/metrics":
            return _response(200, render(), "text/plain; version=0.0.4; charset=utf-8")
        return self._static_file("index.html" if path == "/" else path.lstrip("/"))

    def _static_file(self, name: str) -> Response:
        if "/" in name or name.startswith("."):
            return _json(404, {"error": "not found"})
        resource = self._static / name
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        if suffix not in _STATIC_TYPES or not resource.is_file():
            return _json(404, {"error": "not found"})
        return _response(200, resource.read_bytes(), _STATIC_TYPES[suffix])

    # --- sessions ------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        SESSIONS.inc()
        slot = self.services.take_slot()
        session_id = uuid.uuid4().hex[:12]
        try:
            await self._run_session(connection, session_id, slot)
        except Exception:  # noqa: BLE001 - one broken session must not affect the others
            logger.opt(exception=True).error("session {} failed", session_id)
        finally:
            self.services.give_back_slot(slot)
            SESSIONS.dec()
            self._sessions.discard(task)

    async def _run_session(
        self, connection: ServerConnection, session_id: str, slot: int | None
    ) -> None:
        s = self.services.settings
        transport = WebSocketTransport(
            connection,
            session_id=session_id,
            sample_rate_out=getattr(self.services.tts, "sample_rate", 24000),
            max_binary_bytes=s.max_message_bytes,
            max_messages_per_s=s.max_messages_per_s,
        )
        built = self._factory(self.services, transport.input(), transport.output(), slot)
        transport.on_hello = built.on_hello
        processors = built.processors
        session = Session(processors, name=f"session {session_id}")
        logger.info("session {} connected (slot {})", session_id, slot)
        await session.start()
        try:
            await transport.run(session)
        finally:
            await session.cancel()
            logger.info("session {} closed", session_id)


async def serve_bot(
    settings: Settings,
    *,
    pipeline: PipelineFactory = build_pipeline,
    progress: Callable[[str], None] = print,
) -> None:
    """Run the voice bot until SIGINT/SIGTERM: what ``framecast run`` does.

    The server listens first, so ``/health`` answers 503 "starting" while the models
    load; then sessions are served until a stop signal. Everything is closed on the
    way out, also when the start fails (its error is raised).
    """
    services = Services(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = VoiceBotServer(services, host=settings.host, port=settings.port, pipeline=pipeline)
    try:
        await server.start()
        progress(f"listening on {server.url} (starting up)")
        starting = asyncio.ensure_future(services.start(progress))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a failed start raises here
                print(
                    f"framecast voice bot: open {server.url} in a browser (Ctrl-C stops)",
                    flush=True,
                )
                await stopping
            progress("stopping")
        finally:
            for task in (starting, stopping):
                task.cancel()
            await asyncio.wait({starting, stopping})
    finally:
        await server.aclose()
        with contextlib.suppress(Exception):
            await services.aclose()
