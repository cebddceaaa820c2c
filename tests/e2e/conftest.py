"""One real voice bot for the whole end-to-end session.

The bot runs as a subprocess exactly as a user starts it (``framecast run``), with the
default models and the embedded llama.cpp server. Two limits are lowered so their
behaviour is cheap to test: 3 concurrent sessions and 64 KiB audio messages.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client import MAX_MESSAGE_BYTES, MAX_SESSIONS, Bot

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
FRAMECAST = Path(sys.executable).parent / "framecast"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(process: subprocess.Popen[str], bot: Bot, stdout_lines: list[str]) -> None:
    """Return once the bot printed its URL and /health says 200; fail with its output if not."""
    ready = threading.Event()

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stdout_lines.append(line.rstrip())
            if "framecast voice bot: open http" in line:
                ready.set()

    threading.Thread(target=read_stdout, name="bot stdout", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S

    def fail(why: str) -> None:
        pytest.fail(
            f"the bot {why}\n--- stdout ---\n"
            + "\n".join(stdout_lines[-10:])
            + f"\n--- stderr (tail) ---\n{_tail(bot.stderr_path)}",
            pytrace=False,
        )

    while not ready.wait(0.2):
        if process.poll() is not None:
            fail(f"exited with status {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            fail(f"did not print its URL within {START_TIMEOUT_S:.0f} s")
    status = 0
    while time.monotonic() < deadline:
        try:
            status, _ = bot.get("/health", timeout_s=5)
        except OSError:
            status = 0
        if status == 200:
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)  # polling a subprocess: there is nothing to await
    fail(f"/health did not become 200 (last status {status})")


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (the bot stops its llama.cpp server), then kill the whole process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture(scope="session")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """The real voice bot, started once for all end-to-end tests."""
    workdir = tmp_path_factory.mktemp("bot")  # no stray .env from the repo changes settings
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    env = {
        **os.environ,
        "FRAMECAST_MAX_SESSIONS": str(MAX_SESSIONS),
        "FRAMECAST_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
        "PYTHONUNBUFFERED": "1",
    }
    stderr_path = ARTIFACTS / "e2e-bot.log"  # kept after the run, for post-mortems
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [str(FRAMECAST), "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,  # its own group: a last-resort kill takes llama.cpp too
        )
        try:
            running = Bot(port=port, stderr_path=stderr_path)
            _wait_ready(process, running, [])
            yield running
        finally:
            _stop(process)
    assert process.returncode in (0, -signal.SIGTERM), (
        f"the bot exited with status {process.returncode} on SIGTERM\n{_tail(stderr_path)}"
    )


@pytest.fixture(scope="session")
def whisper() -> Any:
    """faster-whisper tiny.en from the model store, to hear the bot's replies back."""
    from faster_whisper import WhisperModel

    from framecast.models import ModelStore

    return WhisperModel(
        str(ModelStore().path("whisper-tiny.en")), device="cpu", compute_type="int8", cpu_threads=1
    )


@pytest.fixture(autouse=True)
def no_sessions_left(bot: Bot) -> Iterator[None]:
    """Each test starts and ends with no session open on the server (nothing leaked)."""
    asyncio.run(bot.eventually(lambda: bot.health()[1]["sessions"] == 0, "sessions before"))
    yield
    asyncio.run(bot.eventually(lambda: bot.health()[1]["sessions"] == 0, "sessions after"))
