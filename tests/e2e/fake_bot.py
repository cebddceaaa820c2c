"""Check the browser client in headless Chromium against a scripted fake bot.

The real bot is not needed: a tiny ``websockets`` server plays the server side of
``/ws/audio`` (PROTOCOL.md) from a script and serves the static client, and Playwright
drives a real Chromium whose fake microphone plays a WAV file. This checks the parts a
Python test cannot reach: the AudioWorklets, resampling from the context's real rate,
playback and barge-in clearing.

Run the whole check (about 20 s; needs ``apt-get install chromium`` and the dev extra)::

    .venv/bin/python tests/e2e/fake_bot.py            # exit code 0 = all checks passed
    .venv/bin/python tests/e2e/fake_bot.py --serve    # just serve, open the URL yourself

The script of the fake bot, per connection:

- ``hello`` -> ``ready`` (16000 in, 24000 out), then an event of an unknown type;
- after 1.5 s of received microphone audio -> turn 1: partial and final transcripts,
  ``emotion``, ``reply`` pieces, ``audio_start`` (24000), 1 s of a 440 Hz sine as PCM16
  chunks sent at twice real time, ``audio_end``, ``metrics``;
- ``text`` containing "interrupt" -> a reply with 3 s of sine sent at once, then
  ``audio_cancel`` after 0.6 s, then 0.3 s of stale audio (the client must drop it),
  an ``error`` event and ``metrics``;
- ``text`` containing "drop" -> the server closes the connection (code 1011);
- any other ``text`` -> a short spoken echo; unknown message types -> ``error``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import mimetypes
import socket
import struct
import sys
import time
import wave
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from client import BROWSER_FLAGS, CHROMIUM  # sibling module (tests/e2e)
from playwright.async_api import ConsoleMessage, Page, WebSocket, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["CheckFailed", "FakeBot", "main", "run_check", "serve_fake_bot"]

REPO = Path(__file__).resolve().parents[2]
STATIC_DIR = REPO / "src" / "framecast" / "transports" / "static"
DEFAULT_WAV = REPO / "tests" / "data" / "audio" / "cards_003.wav"

RATE_IN = 16000
RATE_OUT = 24000
BYTES_PER_SECOND_IN = RATE_IN * 2
TRIGGER_AUDIO_S = 1.5
CHUNK_S = 0.05
TURN1_TRANSCRIPTS = ("seven", "seven of", "seven of clubs")
TURN1_REPLY = ("The seven of clubs", " is a fine card.", " Shall I shuffle?")
CANCEL_AFTER_S = 0.6
LONG_AUDIO_S = 3.0
STALE_AUDIO_S = 0.3
MIN_SPEECH_CORRELATION = 0.35
HELLO = {"type": "hello", "client": "framecast-web", "version": "0.1"}


class CheckFailed(Exception):
    """A behaviour of the browser client did not match the protocol or the brief."""


def expect(condition: bool, message: str) -> None:
    """Fail the check with `message` (not `assert`: it must survive ``python -O``)."""
    if not condition:
        raise CheckFailed(message)


def sine_pcm16(seconds: float, rate: int = RATE_OUT, hz: float = 440.0) -> bytes:
    """A phase-continuous sine at a third of full scale, PCM16 little-endian."""
    count = round(seconds * rate)
    samples = (round(10000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(count))
    return struct.pack(f"<{count}h", *samples)


def chunks(pcm: bytes, seconds: float = CHUNK_S, rate: int = RATE_OUT) -> list[bytes]:
    """Cut PCM16 into chunks of `seconds`, each a whole number of samples."""
    size = round(seconds * rate) * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


@dataclass
class AudioLog:
    """Microphone audio one connection received, with arrival times (monotonic s)."""

    pcm: bytearray = field(default_factory=bytearray)
    first_at: float | None = None
    first_size: int = 0
    last_at: float | None = None
    sizes: set[int] = field(default_factory=set)  # distinct message lengths, bytes
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # set when the handler ends

    def add(self, data: bytes) -> None:
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
            self.first_size = len(data)
        self.last_at = now
        self.pcm += data
        self.sizes.add(len(data))

    def bytes_per_second(self) -> float:
        """Average rate from the first to the last message (0 if too short to tell).

        The first message's bytes are left out: they were recorded before it arrived.
        """
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return (len(self.pcm) - self.first_size) / (self.last_at - self.first_at)


@dataclass
class FakeBot:
    """Scripted server side of ``/ws/audio``; keeps what it received for the checks."""

    static_dir: Path = STATIC_DIR
    sessions: list[AudioLog] = field(default_factory=list)
    hellos: list[dict[str, Any]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Serve the static client; let ``/ws/audio`` through to the WebSocket handshake."""
        path = urlsplit(request.path).path
        if path == "/ws/audio":
            return None
        name = "index.html" if path == "/" else path.lstrip("/")
        root = self.static_dir.resolve()
        target = (root / name).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        kind = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}.get(
            target.suffix, mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        )
        body = target.read_bytes()
        headers = Headers(
            [
                ("Content-Type", f"{kind}; charset=utf-8" if kind.startswith("text/") else kind),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("Connection", "close"),
            ]
        )
        return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, body)

    async def handle(self, connection: ServerConnection) -> None:
        """Run the script for one browser connection (see the module docstring)."""
        log = AudioLog()
        self.sessions.append(log)
        session = f"fake-{len(self.sessions)}"
        turn = 0
        replies: set[asyncio.Task[None]] = set()

        def start(reply: Coroutine[Any, Any, None]) -> None:
            task = asyncio.create_task(reply)
            replies.add(task)
            task.add_done_callback(replies.discard)

        try:
            async for message in connection:
                if isinstance(message, bytes):
                    triggered = len(log.pcm) >= TRIGGER_AUDIO_S * BYTES_PER_SECOND_IN
                    log.add(message)
                    if not triggered and len(log.pcm) >= TRIGGER_AUDIO_S * BYTES_PER_SECOND_IN:
                        turn += 1
                        start(self._spoken_turn(connection, turn))
                    continue
                event = json.loads(message)
                kind = event.get("type")
                if kind == "hello":
                    self.hellos.append(event)
                    await send(
                        connection,
                        type="ready",
                        sample_rate_in=RATE_IN,
                        sample_rate_out=RATE_OUT,
                        session=session,
                    )
                    await send(connection, type="future_event", note="clients must ignore this")
                elif kind == "text":
                    text = str(event.get("text", ""))
                    self.texts.append(text)
                    turn += 1
                    if "drop" in text:
                        await connection.close(1011, "fake bot dropped the connection")
                    elif "interrupt" in text:
                        start(self._cancelled_turn(connection, turn))
                    else:
                        start(self._echo_turn(connection, turn, text))
                else:
                    await send(
                        connection,
                        type="error",
                        code="unknown_type",
                        message=f"unknown message type {kind!r}",
                    )
        except ConnectionClosed:
            pass
        finally:
            for task in list(replies):
                task.cancel()
            await asyncio.gather(*replies, return_exceptions=True)
            log.closed.set()

    async def _spoken_turn(self, connection: ServerConnection, turn: int) -> None:
        for i, text in enumerate(TURN1_TRANSCRIPTS):
            final = i == len(TURN1_TRANSCRIPTS) - 1
            await send(connection, type="transcript", turn=turn, text=text, final=final)
        await send(connection, type="emotion", turn=turn, label="neutral", score=0.81)
        for piece in TURN1_REPLY:
            await send(connection, type="reply", turn=turn, text=piece)
        await send(connection, type="audio_start", turn=turn, sample_rate=RATE_OUT)
        for chunk in chunks(sine_pcm16(1.0)):
            await connection.send(chunk)
            await asyncio.sleep(CHUNK_S / 2)  # twice real time, like a fast TTS
        await send(connection, type="audio_end", turn=turn)
        await send(
            connection,
            type="metrics",
            turn=turn,
            eou_ms=212.0,
            stt_final_ms=96.4,
            llm_first_token_ms=151.9,
            tts_first_audio_ms=457.2,
            ttfa_ms=834.5,
        )

    async def _cancelled_turn(self, connection: ServerConnection, turn: int) -> None:
        await send(
            connection, type="reply", turn=turn, text="Once upon a time, in a very long story,"
        )
        await send(connection, type="audio_start", turn=turn, sample_rate=RATE_OUT)
        for chunk in chunks(sine_pcm16(LONG_AUDIO_S, hz=330.0)):
            await connection.send(chunk)
        await asyncio.sleep(CANCEL_AFTER_S)
        await send(connection, type="audio_cancel", turn=turn)
        # Breaks the protocol on purpose: the client must drop audio after a cancel.
        for chunk in chunks(sine_pcm16(STALE_AUDIO_S, hz=660.0)):
            await connection.send(chunk)
        await send(
            connection, type="error", code="tts_failed", message="fake TTS hiccup (scripted)"
        )
        await send(connection, type="metrics", turn=turn, ttfa_ms=401.0, cancelled_after_ms=600.0)

    async def _echo_turn(self, connection: ServerConnection, turn: int, text: str) -> None:
        await send(connection, type="reply", turn=turn, text=f"You said: {text}")
        await send(connection, type="audio_start", turn=turn, sample_rate=RATE_OUT)
        for chunk in chunks(sine_pcm16(0.3)):
            await connection.send(chunk)
        await send(connection, type="audio_end", turn=turn)


async def send(connection: ServerConnection, **event: Any) -> None:
    """Send one JSON event."""
    await connection.send(json.dumps(event))


@contextlib.asynccontextmanager
async def serve_fake_bot(
    bot: FakeBot, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[Server]:
    """Run `bot` on `host`:`port` (0 = any free port) until the block exits."""
    async with serve(bot.handle, host, port, process_request=bot.process_request) as server:
        yield server


def server_port(server: Server) -> int:
    port: int = next(iter(server.sockets)).getsockname()[1]
    return port


def free_port() -> int:
    """A port nothing listens on (for the "server unreachable" check)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class CheckReport:
    """Measured numbers of one run, printed at the end."""

    context_rate: int = 0
    upload_bytes_per_s: float = 0.0
    upload_bytes: int = 0
    speech_correlation: float = 0.0
    turn1_played_s: float = 0.0
    underruns: int = 0
    played_before_cancel_s: float = 0.0
    cleared_s: float = 0.0
    dropped_stale_bytes: int = 0


def speech_correlation(received: bytes, wav_path: Path) -> float:
    """Peak normalised cross-correlation of the uploaded audio with the source WAV.

    Near 1 means the page's downmix/resample/PCM16 path kept the waveform (browser audio
    processing such as AGC and noise suppression lowers it somewhat).
    """
    with wave.open(str(wav_path)) as wav:
        if wav.getframerate() != RATE_IN or wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            return float("nan")
        source = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float64)
    got = np.frombuffer(bytes(received[: len(received) // 2 * 2]), "<i2").astype(np.float64)
    got = got[: len(source) + RATE_IN]  # speech starts at once; allow 1 s of start-up lag
    if len(got) < len(source) // 2 or not got.any():
        return 0.0
    # Full cross-correlation by FFT (the direct sum takes ~10 s); index k = lag + len-1.
    size = len(got) + len(source) - 1
    spectrum = np.fft.rfft(got, size) * np.conj(np.fft.rfft(source, size))
    corr = np.roll(np.fft.irfft(spectrum, size), len(source) - 1)
    # Energy of the part of `got` under the source at each lag: got[k-len+1 .. k].
    cumulative = np.concatenate([[0.0], np.cumsum(got**2)])
    ends = np.minimum(np.arange(1, size + 1), len(got))
    starts = np.clip(np.arange(size) - len(source) + 1, 0, len(got))
    energy = cumulative[ends] - cumulative[starts]
    denom = np.sqrt(np.maximum(energy, 1e-9) * float(np.sum(source**2)))
    return float(np.max(np.abs(corr) / denom))


class ClientPage:
    """A Playwright page with the client loaded, read through ``window.framecast``."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.uplink_bytes_on_wire = 0  # seen by Playwright, independent of the page's count
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._on_console)
        page.on("websocket", self._on_websocket)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _on_websocket(self, ws: WebSocket) -> None:
        ws.on("framesent", self._on_frame_sent)

    def _on_frame_sent(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.uplink_bytes_on_wire += len(payload)

    async def state(self) -> dict[str, Any]:
        """A plain copy of ``window.framecast`` (its getters evaluated)."""
        state: dict[str, Any] = await self.page.evaluate("JSON.parse(JSON.stringify(framecast))")
        return state

    async def wait(self, js: str, what: str, timeout_s: float = 15.0) -> None:
        """Wait until the JS expression `js` is truthy; fail with the hook state if not."""
        try:
            await self.page.wait_for_function(js, timeout=timeout_s * 1000)
        except PlaywrightTimeoutError as exc:
            raise CheckFailed(
                f"timed out waiting for {what}; framecast={await self.state()}"
            ) from exc

    async def say(self, text: str) -> None:
        """Type `text` into the message box and press Enter."""
        await self.page.fill("#say-text", text)
        await self.page.press("#say-text", "Enter")

    async def text_of(self, selector: str) -> str:
        return await self.page.inner_text(selector)


async def check_connect(client: ClientPage, bot: FakeBot, base: str) -> int:
    """Connect: hello -> ready; returns the AudioContext rate."""
    await client.page.goto(base)
    expect((await client.state())["connected"] is False, "connected before Connect")
    await client.page.click("#connect")
    await client.wait("framecast.ready", "ready")
    state = await client.state()
    expect(state["session"] == "fake-1", f"session id not in hooks: {state['session']}")
    expect(state["sampleRateOut"] == RATE_OUT, "sample_rate_out from ready not kept")
    expect("fake-1" in await client.text_of("#session"), "session id not displayed")
    expect(bot.hellos == [HELLO], f"hello sent: {bot.hellos}")
    return int(state["contextSampleRate"])


async def check_spoken_turn(client: ClientPage, report: CheckReport) -> None:
    """Turn 1: transcripts, emotion, reply and metrics shown; its 1 s of audio played."""
    rate = report.context_rate
    await client.wait(
        "framecast.turnsHeard === 1 && framecast.events.includes('metrics')", "turn 1", timeout_s=20
    )
    await client.wait(
        f"framecast.samplesPlayed >= {0.98 * rate} && framecast.bufferedSamples === 0",
        "turn 1 playback",
    )
    state = await client.state()
    report.turn1_played_s = state["samplesPlayed"] / rate
    report.underruns = state["underruns"]
    finals = [t["text"] for t in state["transcripts"] if t["final"]]
    expect(finals == ["seven of clubs"], f"final transcripts {finals}")
    expect(len(state["transcripts"]) == len(TURN1_TRANSCRIPTS), "partials not recorded")
    expect(state["replies"].get("1") == "".join(TURN1_REPLY), f"reply {state['replies']}")
    expect(state["emotions"].get("1") == {"label": "neutral", "score": 0.81}, "emotion")
    expect(state["metrics"]["1"]["ttfa_ms"] == 834.5, "metrics")
    expect("future_event" in state["events"], "unknown event not recorded")
    expect(state["audioBytesReceived"] == RATE_OUT * 2, "turn 1 audio bytes")
    expect(state["audioBytesDropped"] == 0, "turn 1 audio dropped")
    expect(abs(report.turn1_played_s - 1.0) < 0.01, f"played {report.turn1_played_s} s of 1 s")
    card = await client.text_of("article.turn[data-turn='1']")
    for text in ("seven of clubs", "".join(TURN1_REPLY), "neutral 0.81", "ttfa", "835"):
        expect(text in card, f"turn 1 card lacks {text!r}: {card!r}")
    utterance_class = await client.page.get_attribute(
        "article.turn[data-turn='1'] .utterance", "class"
    )
    expect(utterance_class == "utterance final", "final transcript not styled as final")


def check_uplink(log: AudioLog, wav: Path, report: CheckReport) -> None:
    """Microphone audio arrives at real-time rate and still resembles the WAV."""
    chunk = round(RATE_IN * 0.04) * 2
    expect(log.sizes == {chunk}, f"uplink message sizes {log.sizes}, expected 40 ms = {chunk} B")
    report.upload_bytes_per_s = log.bytes_per_second()
    expect(
        abs(report.upload_bytes_per_s / BYTES_PER_SECOND_IN - 1) < 0.1,
        f"uplink {report.upload_bytes_per_s:.0f} B/s, expected ~{BYTES_PER_SECOND_IN}",
    )
    report.speech_correlation = speech_correlation(bytes(log.pcm), wav)
    # Measured: 0.53-0.68 with the browser's AGC/noise suppression on (0.91 with them off);
    # a 1 % rate error (e.g. assuming 48 kHz) gives 0.15, noise 0.03.
    expect(
        report.speech_correlation > MIN_SPEECH_CORRELATION,
        f"uplink audio unlike the WAV (correlation {report.speech_correlation:.2f})",
    )


async def check_barge_in(client: ClientPage, bot: FakeBot, report: CheckReport) -> None:
    """Turn 2 (typed): audio_cancel drops the queued audio and the stale audio after it."""
    rate = report.context_rate
    before = await client.state()
    await client.say("please interrupt me")
    await client.wait(
        f"framecast.lastCancelTurn === 2 && framecast.samplesCleared > {before['samplesCleared']}"
        " && framecast.bufferedSamples === 0"
        " && framecast.events.filter(t => t === 'metrics').length === 2",
        "audio_cancel of turn 2",
    )
    state = await client.state()
    report.played_before_cancel_s = (state["samplesPlayed"] - before["samplesPlayed"]) / rate
    report.cleared_s = (state["samplesCleared"] - before["samplesCleared"]) / rate
    report.dropped_stale_bytes = state["audioBytesDropped"]
    expect(
        0.2 < report.played_before_cancel_s < 1.5,
        f"played {report.played_before_cancel_s:.2f} s of turn 2 before the cancel",
    )
    expect(
        abs(report.played_before_cancel_s + report.cleared_s - LONG_AUDIO_S) < 0.05,
        "played + cleared != queued",
    )
    stale = round(STALE_AUDIO_S * RATE_OUT) * 2
    expect(report.dropped_stale_bytes == stale, f"dropped {report.dropped_stale_bytes} != {stale}")
    expect(
        state["errors"] == [{"message": "fake TTS hiccup (scripted)", "code": "tts_failed"}],
        f"errors {state['errors']}",
    )
    await asyncio.sleep(0.5)  # proving a negative: nothing may play after the cancel
    later = await client.state()
    played_after = later["samplesPlayed"] - state["samplesPlayed"]
    expect(played_after == 0, f"{played_after} samples played after the cancel")
    expect(bot.texts == ["please interrupt me"], f"text messages received: {bot.texts}")
    card = await client.text_of("article.turn[data-turn='2']")
    for text in ("please interrupt me", "Once upon a time", "interrupted"):
        expect(text in card, f"turn 2 card lacks {text!r}: {card!r}")
    expect("tts_failed" in await client.text_of("#error-log"), "error not listed")


async def check_lost_and_reconnect(client: ClientPage, bot: FakeBot, report: CheckReport) -> None:
    """A dropped connection says so and offers Reconnect; every uplink byte is accounted for."""
    await client.say("drop the connection")
    await client.wait("!framecast.connected", "connection loss")
    expect("Connection lost" in await client.text_of("#notice"), "no connection-lost notice")
    expect(await client.page.is_visible("#reconnect"), "no reconnect button")
    await client.page.click("#reconnect")
    await client.wait("framecast.ready && framecast.session === 'fake-2'", "reconnect")
    expect(not await client.page.is_visible("#notice"), "notice still shown after reconnect")
    await client.wait(
        "framecast.mic === 'on' && framecast.audioBytesSent > 0", "mic after reconnect"
    )
    await client.page.click("#disconnect")
    await client.wait("!framecast.connected", "disconnect")
    sent = (await client.state())["audioBytesSent"]
    # The page may see the close before the server's handler has read the last messages.
    async with asyncio.timeout(5):
        for log in bot.sessions:
            await log.closed.wait()
    report.upload_bytes = sum(len(log.pcm) for log in bot.sessions)
    expect(
        sent == report.upload_bytes == client.uplink_bytes_on_wire,
        f"uplink bytes: page {sent}, server {report.upload_bytes}, "
        f"wire {client.uplink_bytes_on_wire}",
    )


async def check_unreachable(client: ClientPage, base: str) -> None:
    """No server: the page says so instead of failing silently."""
    await client.page.goto(f"{base}?ws=ws://127.0.0.1:{free_port()}/ws/audio")
    await client.page.click("#connect")
    await client.wait("!document.getElementById('notice').hidden", "unreachable notice")
    expect("unreachable" in await client.text_of("#notice"), "no unreachable notice")


async def check_mic_denied(client: ClientPage, base: str) -> None:
    """Microphone refused: a clear notice, and typed messages still get replies."""
    await client.page.goto(base)
    await client.page.click("#connect")
    await client.wait("framecast.ready && framecast.mic === 'denied'", "mic denied")
    expect("denied" in await client.text_of("#notice"), "no mic-denied notice")
    await client.say("hello there")
    await client.wait("framecast.replies['1'] === 'You said: hello there'", "reply without mic")


async def run_check(wav: Path, screenshot: Path) -> CheckReport:
    """Drive Chromium through the whole script; raises CheckFailed on the first miss."""
    report = CheckReport()
    bot = FakeBot()
    async with serve_fake_bot(bot) as server, async_playwright() as pw:
        base = f"http://localhost:{server_port(server)}/"
        fake_mic = [
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--use-fake-ui-for-media-stream",
        ]
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS + fake_mic)
        client = ClientPage(await browser.new_page())
        report.context_rate = await check_connect(client, bot, base)
        await check_spoken_turn(client, report)
        check_uplink(bot.sessions[0], wav, report)
        await check_barge_in(client, bot, report)
        await client.page.screenshot(path=str(screenshot), full_page=True)
        await check_lost_and_reconnect(client, bot, report)
        await check_unreachable(client, base)
        refused = [e for e in client.errors if "ERR_CONNECTION_REFUSED" not in e]
        expect(not refused, f"errors in the page: {refused}")
        await browser.close()

        denying = await pw.chromium.launch(
            executable_path=CHROMIUM, args=[*BROWSER_FLAGS, "--deny-permission-prompts"]
        )
        await check_mic_denied(ClientPage(await denying.new_page()), base)
        await denying.close()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the browser check (default) or just serve the fake bot (``--serve``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="only serve the fake bot")
    parser.add_argument("--port", type=int, default=8765, help="port for --serve")
    parser.add_argument("--wav", type=Path, default=DEFAULT_WAV, help="fake microphone input")
    parser.add_argument("--screenshot", type=Path, default=Path("/tmp/client.png"))
    args = parser.parse_args(argv)
    if args.serve:

        async def serve_forever() -> None:
            async with serve_fake_bot(FakeBot(), port=args.port) as server:
                print(f"fake bot on http://localhost:{server_port(server)}/", flush=True)
                await server.serve_forever()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_forever())
        return 0
    try:
        report = asyncio.run(run_check(args.wav.resolve(), args.screenshot))
    except CheckFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    for name, value in vars(report).items():
        print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
    print(f"OK; screenshot in {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
