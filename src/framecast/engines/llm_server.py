"""A local llama.cpp OpenAI-compatible server in a child process.

The embedded default runs the LLM with ``xllamacpp`` (llama.cpp's own C++ server, shipped
as a prebuilt wheel). It runs in a *subprocess* of its own process group, so a crash in
native code cannot take the bot down and stopping it is a signal, not a hope. The child
binds the port (0 = any free port, no race), writes its address to a ready file once the
model is loaded, and exits on SIGTERM/SIGINT or when its parent disappears.

Latency lever #1 is llama.cpp's prompt cache: with ``n_parallel`` slots, give each
conversation its own slot and send ``{"id_slot": n, "cache_prompt": True}`` with each
request (``extra_body=slot_options(n)`` with the ``openai`` client). The slot keeps the
KV cache of its last prompt, so the next request only prefills what is new (a whole
history costs ~1 s on 2 cores, a new question ~0.15 s).

Run directly: ``python -m framecast.engines.llm_server --model M.gguf --port 8011``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from loguru import logger

from framecast.exceptions import ConfigError, EngineError, ModelNotInstalledError

__all__ = ["LlamaServer", "main", "slot_options"]

_POLL_S = 0.05
_HEALTH_TIMEOUT_S = 1.0
_STOP_GRACE_S = 5.0
_STDERR_TAIL_LINES = 15
# Not `-m framecast.engines.llm_server`: the package __init__ imports this module first,
# and runpy then warns about executing a module that is already imported.
_CHILD_CODE = "import sys; from framecast.engines.llm_server import main; sys.exit(main())"


def slot_options(slot: int) -> dict[str, object]:
    """Request fields that pin a conversation to llama.cpp slot ``slot`` with its cache.

    Pass as ``extra_body`` to ``client.chat.completions.create``; ``slot`` must be below
    the server's ``n_parallel``.
    """
    return {"id_slot": slot, "cache_prompt": True}


class LlamaServer:
    """Start, health-check and stop a llama.cpp server process for one GGUF model.

    Args:
        model_path: the GGUF file.
        host: interface to bind.
        port: TCP port; 0 lets the server pick a free one (see :attr:`base_url`).
        n_ctx: context length of *each* slot, in tokens.
        n_parallel: number of slots, i.e. conversations that keep their prompt cache.
        threads: CPU threads for prefill and decoding.
        alias: the model name clients send (``model=`` in the OpenAI API).
        poll: how hard llama.cpp's idle threads busy-wait (0-100, llama.cpp's default 50).
        startup_timeout_s: how long loading may take before :meth:`start` gives up.

    Use ``async with LlamaServer(...) as server:`` (or ``with`` in sync code, e.g. pytest
    fixtures); :meth:`start` and :meth:`aclose` are idempotent.

    Raises:
        ModelNotInstalledError: if ``model_path`` does not exist.
        ConfigError: for non-positive sizes.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        n_ctx: int = 4096,
        n_parallel: int = 1,
        threads: int = 2,
        alias: str = "local",
        poll: int = 50,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self._model = Path(model_path)
        if not self._model.is_file():
            raise ModelNotInstalledError(
                f"no GGUF model at {self._model}; install one with `framecast models fetch "
                "qwen2.5-coder-0.5b` or pass the right path"
            )
        if min(n_ctx, n_parallel, threads) < 1 or startup_timeout_s <= 0:
            raise ConfigError(
                "n_ctx, n_parallel, threads and startup_timeout_s must be positive, got "
                f"{n_ctx}, {n_parallel}, {threads}, {startup_timeout_s}"
            )
        self._argv = [
            sys.executable, "-c", _CHILD_CODE,
            "--model", str(self._model), "--host", host, "--port", str(port),
            "--ctx", str(n_ctx), "--parallel", str(n_parallel), "--threads", str(threads),
            "--alias", alias, "--poll", str(poll),
        ]  # fmt: skip
        self._alias = alias
        self._n_parallel = n_parallel
        self._timeout = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._address: str | None = None

    @property
    def alias(self) -> str:
        """Model name to send in requests."""
        return self._alias

    @property
    def n_parallel(self) -> int:
        """Number of slots; valid ``id_slot`` values are ``range(n_parallel)``."""
        return self._n_parallel

    @property
    def pid(self) -> int | None:
        """Process id of the server (also its process group id), None when not started."""
        return None if self._process is None else self._process.pid

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, e.g. ``http://127.0.0.1:41234/v1``.

        Raises:
            EngineError: if the server is not running.
        """
        if self._address is None:
            raise EngineError("the llama server is not running", service="llama-server")
        return f"{self._address}/v1"

    # --- async -----------------------------------------------------------------------

    async def start(self) -> None:
        """Launch the server and return once ``/health`` answers ok.

        Raises:
            EngineError: if the process exits or is not healthy within the startup
                timeout; the message carries the end of its stderr.
        """
        if self._address is not None:
            return
        process, workdir = self._launch()
        deadline = time.monotonic() + self._timeout
        try:
            # polling: the child signals readiness only through its file and /health
            while True:
                address = await asyncio.to_thread(self._poll, process, workdir, deadline)
                if address is not None:
                    break
                await asyncio.sleep(_POLL_S)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._stop))
            raise
        self._ready(address)

    async def aclose(self) -> None:
        """Stop the server (SIGTERM to its process group, SIGKILL after a grace period)."""
        await asyncio.shield(asyncio.to_thread(self._stop))

    async def __aenter__(self) -> LlamaServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- sync ------------------------------------------------------------------------

    def start_sync(self) -> None:
        """Blocking :meth:`start`, for sync code such as pytest fixtures."""
        if self._address is not None:
            return
        process, workdir = self._launch()
        deadline = time.monotonic() + self._timeout
        try:
            while True:
                address = self._poll(process, workdir, deadline)
                if address is not None:
                    break
                time.sleep(_POLL_S)
        except BaseException:
            self._stop()
            raise
        self._ready(address)

    def close(self) -> None:
        """Blocking :meth:`aclose`."""
        self._stop()

    def __enter__(self) -> LlamaServer:
        self.start_sync()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- shared steps ----------------------------------------------------------------

    def _launch(self) -> tuple[subprocess.Popen[bytes], Path]:
        """Start the child process (once) and return it with its working directory."""
        if self._process is None or self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="framecast-llama-"))
            with (self._workdir / "stderr.log").open("wb") as stderr:
                self._process = subprocess.Popen(
                    [*self._argv, "--ready-file", str(self._workdir / "address")],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,  # own process group: stopped as a whole
                )
            logger.info("llama server starting (pid {}) for {}", self._process.pid, self._model)
        return self._process, self._workdir

    def _poll(self, process: subprocess.Popen[bytes], workdir: Path, deadline: float) -> str | None:
        """The server's address once it is loaded and healthy, None while it is loading.

        Raises:
            EngineError: if the process has exited or ``deadline`` has passed.
        """
        if process.poll() is not None:
            raise self._startup_error(f"exited with code {process.returncode}")
        address_file = workdir / "address"
        if address_file.is_file() and _healthy(address := address_file.read_text().strip()):
            return address
        if time.monotonic() > deadline:
            raise self._startup_error(f"was not ready within {self._timeout:g} s")
        return None

    def _ready(self, address: str) -> None:
        self._address = address
        logger.info("llama server ready at {}", self.base_url)

    def _startup_error(self, what: str) -> EngineError:
        return EngineError(
            f"llama server for {self._model} {what}; stderr ends with:\n{self._stderr_tail()}",
            service="llama-server",
        )

    def _stderr_tail(self) -> str:
        if self._workdir is None:
            return ""
        with contextlib.suppress(OSError):
            lines = (self._workdir / "stderr.log").read_text(errors="replace").splitlines()
            return "\n".join(lines[-_STDERR_TAIL_LINES:])
        return ""

    def _stop(self) -> None:
        process, self._process = self._process, None
        self._address = None
        if process is not None:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    logger.warning("llama server ignored SIGTERM; killing it")
                    _signal_group(process.pid, signal.SIGKILL)
                    process.wait()
            else:  # the leader is gone; make sure nothing of its group lingers
                _signal_group(process.pid, signal.SIGKILL)
            logger.info("llama server stopped (exit code {})", process.returncode)
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# A local address must never go through an HTTP(S)_PROXY from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _healthy(address: str) -> bool:
    """Whether llama.cpp's ``GET /health`` answers 200 (it says 503 while loading)."""
    try:
        with _DIRECT.open(f"{address}/health", timeout=_HEALTH_TIMEOUT_S) as reply:
            return bool(reply.status == 200)
    except (OSError, http.client.HTTPException):  # URLError, refused, reset, timeout
        return False


# --- the child process ---------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m framecast.engines.llm_server",
        description="Serve a GGUF model over llama.cpp's OpenAI-compatible HTTP API.",
    )
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--ctx", type=int, default=4096, help="context tokens per slot")
    parser.add_argument("--parallel", type=int, default=1, help="slots")
    parser.add_argument("--threads", type=int, default=2, help="decoding threads")
    parser.add_argument("--threads-batch", type=int, default=0, help="prefill threads (0: same)")
    parser.add_argument(
        "--poll", type=int, default=50, help="0-100: how hard idle threads busy-wait for work"
    )
    parser.add_argument("--alias", default="local", help="model name clients send")
    parser.add_argument("--ready-file", type=Path, help="write the address here when ready")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT or until the parent process goes away."""
    args = _parse_args(argv)
    import xllamacpp as xlc  # type: ignore[import-untyped]  # optional: llm-server extra

    stop_signals = {signal.SIGTERM, signal.SIGINT}
    # Block before the server starts its threads, so they inherit the mask and the
    # signals wait for sigtimedwait below instead of killing the process mid-request.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    params = xlc.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx * args.parallel  # llama.cpp splits n_ctx across the slots
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads_batch or args.threads
    # How hard idle threads busy-wait between steps (llama.cpp's default is 50).
    params.cpuparams.poll = args.poll
    params.cpuparams_batch.poll = args.poll
    params.cache_prompt = True
    # When the history is trimmed at its start, reuse the cached chunks that follow
    # by shifting them in the KV cache instead of prefilling everything again.
    params.n_cache_reuse = 64
    params.model_alias = {args.alias}
    try:
        server = xlc.Server(params)
    except RuntimeError as exc:  # details are already on stderr from llama.cpp
        print(f"llama server failed to start: {exc}", file=sys.stderr, flush=True)
        return 1
    address = str(server.listening_address)
    if args.ready_file is not None:
        partial = args.ready_file.with_suffix(".partial")
        partial.write_text(address)
        partial.replace(args.ready_file)  # atomic: the parent never reads half an address
    print(f"llama server listening on {address}", file=sys.stderr, flush=True)
    parent = os.getppid()
    while signal.sigtimedwait(stop_signals, 1.0) is None:
        if os.getppid() != parent:  # orphaned: the bot died without stopping us
            break
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
