"""A scripted ``/ws/audio`` client for the end-to-end tests of the real voice bot.

:class:`BotClient` records everything the server sends, in arrival order, and lets a
test await conditions on that record with a bound (never a bare sleep). Speech is sent
the way a microphone sends it: real clips from ``tests/data/audio``, in 20 ms chunks
paced in real time, followed by room silence. The helpers at the bottom score
transcripts (WER) and turn reply audio back into 16 kHz for Whisper.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = [
    "AUDIO_DIR",
    "MAX_MESSAGE_BYTES",
    "MAX_SESSIONS",
    "Bot",
    "BotClient",
    "Clip",
    "Received",
    "after_cancel_violations",
    "assert_spoken_reply",
    "load_clip",
    "normalize_words",
    "resample_24k_to_16k",
    "silence",
    "spoken_turn",
    "typed_turn",
    "word_error_rate",
]

AUDIO_DIR = Path(__file__).resolve().parents[1] / "data" / "audio"
RATE_IN = 16_000
CHUNK_S = 0.02
#: Limits the test bot runs with (lowered so they are cheap to reach).
#: Debian's Chromium, and the flags that work here as root and offline (BROWSER.md);
#: callers add the fake microphone's file and whether permission prompts are granted.
CHROMIUM = "/usr/bin/chromium"
BROWSER_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
]
MAX_SESSIONS = 3
MAX_MESSAGE_BYTES = 65_536


@dataclass(frozen=True, slots=True)
class Clip:
    """A speech clip from the manifest: 16 kHz PCM16 mono and what is said in it."""

    name: str
    pcm: bytes
    transcript: str
    speech_start_s: float
    speech_end_s: float

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / RATE_IN


def load_clip(file: str) -> Clip:
    """Read `file` (a name in ``manifest.json``) as PCM16 with its transcript."""
    manifest = json.loads((AUDIO_DIR / "manifest.json").read_text())
    entry = next(e for e in manifest if e["file"] == file)
    with wave.open(str(AUDIO_DIR / file)) as wav:
        if (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) != (RATE_IN, 2, 1):
            raise ValueError(f"{file} is not 16 kHz 16-bit mono")
        pcm = wav.readframes(wav.getnframes())
    return Clip(
        name=file,
        pcm=pcm,
        transcript=entry["transcript"],
        speech_start_s=float(entry["speech_start_s"]),
        speech_end_s=float(entry["speech_end_s"]),
    )


def silence(seconds: float) -> bytes:
    """Digital silence, PCM16."""
    return bytes(round(seconds * RATE_IN) * 2)


@dataclass(slots=True)
class Received:
    """One message from the server: a JSON event or a binary audio message."""

    at: float  # time.monotonic() on arrival
    event: dict[str, Any] | None = None
    audio: bytes | None = None


@dataclass
class BotClient:
    """One connection to ``/ws/audio``; use ``async with BotClient(url) as client``.

    Every received message is appended to :attr:`log`; :meth:`wait_for` awaits a
    condition on it with a timeout and fails with the log's tail.
    """

    url: str
    log: list[Received] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    _ws: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self) -> BotClient:
        """Connect and start recording what the server sends."""
        # max_size: a reply's audio arrives in chunks far below 1 MiB, but be generous.
        self._ws = await connect(self.url, max_size=8 << 20, compression=None, open_timeout=10)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aenter__(self) -> BotClient:
        return await self.open()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def ws(self) -> ClientConnection:
        assert self._ws is not None, "not connected"
        return self._ws

    async def close(self) -> None:
        """Close politely and stop the reader."""
        if self._ws is not None:
            async with asyncio.timeout(10):
                await self._ws.close()
        if self._reader is not None:
            async with asyncio.timeout(10):
                await self._reader

    def abort(self) -> None:
        """Vanish: drop the TCP connection with no closing handshake."""
        transport = self.ws.transport
        transport.abort()

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                now = time.monotonic()
                if isinstance(message, bytes):
                    self.log.append(Received(at=now, audio=message))
                else:
                    self.log.append(Received(at=now, event=json.loads(message)))
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            self._changed.set()

    # --- sending ---------------------------------------------------------------------

    async def send_json(self, payload: Any) -> None:
        await self.ws.send(json.dumps(payload))

    async def send_text(self, text: str) -> None:
        """A typed user turn."""
        await self.send_json({"type": "text", "text": text})

    async def stream(
        self,
        pcm: bytes,
        *,
        then_silence_s: float = 0.0,
        stop: Callable[[], bool] | None = None,
        chunk_s: float = CHUNK_S,
    ) -> None:
        """Send `pcm` like a microphone: chunks in real time, then silence.

        Each chunk leaves when its last sample has been "recorded" (PROTOCOL.md allows
        20-100 ms chunks). The trailing silence ends early once `stop()` is true
        (checked every chunk), as a client that stops its microphone would.
        """
        audio = pcm + silence(then_silence_s)
        size = round(RATE_IN * chunk_s) * 2
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(audio), size)):
            if offset >= len(pcm) and stop is not None and stop():
                return
            # Pace by the schedule, not by sleeps of one chunk, so drift does not add up.
            due = start + (index + 1) * chunk_s
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.ws.send(audio[offset : offset + size])

    # --- reading -----------------------------------------------------------------------

    def events(self, kind: str | None = None, *, turn: int | None = None) -> list[dict[str, Any]]:
        """JSON events received so far, optionally of one type and turn."""
        found = []
        for item in self.log:
            if item.event is None:
                continue
            if kind is not None and item.event.get("type") != kind:
                continue
            if turn is not None and item.event.get("turn") != turn:
                continue
            found.append(item.event)
        return found

    def index_of(self, kind: str, *, turn: int | None = None, start: int = 0) -> int | None:
        """Position in :attr:`log` of the first `kind` event (of `turn`) at or after `start`."""
        for i in range(start, len(self.log)):
            event = self.log[i].event
            if event is not None and event.get("type") == kind:
                if turn is None or event.get("turn") == turn:
                    return i
        return None

    async def wait_for(
        self, condition: Callable[[], Any], what: str, timeout_s: float = 30.0
    ) -> Any:
        """Await until `condition()` is truthy (re-checked on every message); return it."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    result = condition()
                    if result:
                        return result
                    if self.closed.is_set():
                        raise AssertionError(
                            f"connection closed ({self.close_code}) while waiting for {what}; "
                            f"log tail: {self.describe()}"
                        )
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout_s} s waiting for {what}; log tail: {self.describe()}"
            ) from None

    async def wait_event(
        self,
        kind: str,
        what: str | None = None,
        timeout_s: float = 30.0,
        start: int = 0,
        **match: Any,
    ) -> dict[str, Any]:
        """Await the first `kind` event (at log index >= `start`) whose fields equal `match`."""

        def found() -> dict[str, Any] | None:
            for item in self.log[start:]:
                event = item.event
                if event is not None and event.get("type") == kind:
                    if all(event.get(k) == v for k, v in match.items()):
                        return event
            return None

        event: dict[str, Any] = await self.wait_for(found, what or f"{kind} {match}", timeout_s)
        return event

    def audio_of_turn(self, turn: int) -> bytes:
        """Binary audio between ``audio_start`` of `turn` and the next control event."""
        pcm = bytearray()
        inside = False
        for item in self.log:
            if item.event is not None:
                kind = item.event.get("type")
                if kind == "audio_start":
                    inside = item.event.get("turn") == turn
                elif kind in ("audio_end", "audio_cancel"):
                    inside = False
            elif inside and item.audio is not None:
                pcm += item.audio
        return bytes(pcm)

    def describe(self, last: int = 25) -> str:
        """The log's tail, audio runs summarized, for failure messages."""
        lines: list[str] = []
        audio_run = 0
        for item in self.log:
            if item.audio is not None:
                audio_run += len(item.audio)
                continue
            if audio_run:
                lines.append(f"<audio {audio_run} B>")
                audio_run = 0
            lines.append(json.dumps(item.event)[:200])
        if audio_run:
            lines.append(f"<audio {audio_run} B>")
        return "\n  " + "\n  ".join(lines[-last:])


@dataclass(frozen=True)
class Bot:
    """Where the running bot listens, and how to read its HTTP side."""

    port: int
    stderr_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/audio"

    def get(self, path: str, timeout_s: float = 10.0) -> tuple[int, bytes]:
        """GET `path`: (status, body), also for error statuses."""
        try:
            with urllib.request.urlopen(self.base_url + path.lstrip("/"), timeout=timeout_s) as r:
                return int(r.status), r.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = self.get("/health")
        return status, json.loads(body)

    def sessions_gauge(self) -> float:
        """The ``framecast_sessions`` gauge from ``/metrics``."""
        status, body = self.get("/metrics")
        assert status == 200, status
        match = re.search(rb"^framecast_sessions ([0-9.eE+-]+)$", body, re.MULTILINE)
        assert match, "no framecast_sessions gauge in /metrics"
        return float(match.group(1))

    def llm_busy_slots(self) -> list[int]:
        """Slots of the embedded llama.cpp server now generating (its ``/slots`` endpoint).

        Its address is only in the bot's log ("llama server ready at URL").
        """
        found = re.findall(r"llama server ready at (http://\S+)/v1", self.stderr_path.read_text())
        assert found, "the bot's log does not say where its llama.cpp server listens"
        with urllib.request.urlopen(found[-1] + "/slots", timeout=5) as response:
            slots = json.loads(response.read())
        return [int(slot["id"]) for slot in slots if slot.get("is_processing")]

    async def eventually(self, check: Any, what: str, timeout_s: float = 10.0) -> None:
        """Re-check a server-side fact (seen only over HTTP) until true, within a bound."""
        last: Any = None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    last = await asyncio.to_thread(check)
                    if last is True:
                        return
                    await asyncio.sleep(0.05)  # polling interval; no event exists to await
        except TimeoutError:
            raise AssertionError(f"{what}: still {last!r} after {timeout_s} s") from None


# --- scoring -----------------------------------------------------------------------------

_NUMBERS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
    "7": "seven", "8": "eight", "9": "nine", "10": "ten", "11": "eleven", "12": "twelve",
}  # fmt: skip


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation; small numerals spelled out (Whisper writes "10")."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    return [_NUMBERS.get(word, word) for word in words]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference length."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / max(1, len(ref))


def resample_24k_to_16k(pcm: bytes) -> np.ndarray:
    """PCM16 at 24 kHz to float32 at 16 kHz, band-limited (FFT: drop bins above 8 kHz)."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    count = len(samples) * 2 // 3
    spectrum = np.fft.rfft(samples)
    resampled = np.fft.irfft(spectrum[: count // 2 + 1], count) * (count / max(1, len(samples)))
    return resampled.astype(np.float32)


# --- whole turns ---------------------------------------------------------------------------

REPLY_TIMEOUT_S = 60.0  # a turn on 2 busy cores: STT + LLM + TTS, with margin


def after_cancel_violations(client: BotClient, turn: int) -> list[str]:
    """What the server sent after ``audio_cancel`` of `turn` that PROTOCOL.md forbids.

    Binary audio is legal after the cancel only inside a later turn's reply (between its
    ``audio_start`` and ``audio_end``); no event of the cancelled turn may carry reply
    text, transcripts or audio control. Fails if the cancel itself never came.
    """
    cancel = client.index_of("audio_cancel", turn=turn)
    assert cancel is not None, f"no audio_cancel for turn {turn}: {client.describe()}"
    violations = []
    audio_open = False
    for position, item in enumerate(client.log[cancel + 1 :], start=cancel + 1):
        event = item.event
        if event is None:
            if not audio_open:
                violations.append(f"#{position}: {len(item.audio or b'')} B of audio")
            continue
        if event["type"] == "audio_start":
            audio_open = int(event["turn"]) > turn
        elif event["type"] in ("audio_end", "audio_cancel"):
            audio_open = False
        if event.get("turn") == turn and event["type"] in _CANCELLED_TURN_FORBIDS:
            violations.append(f"#{position}: {event}")
    return violations


_CANCELLED_TURN_FORBIDS = frozenset(
    {"reply", "transcript", "audio_start", "audio_end", "audio_cancel"}
)


def assert_spoken_reply(client: BotClient, turn: int) -> bytes:
    """`turn` got reply text and a complete reply in audio; returns that audio (24 kHz)."""
    text = "".join(str(e.get("text", "")) for e in client.events("reply", turn=turn))
    assert text.strip(), f"no reply text for turn {turn}: {client.describe()}"
    starts = client.events("audio_start", turn=turn)
    assert starts, f"no audio_start for turn {turn}: {client.describe()}"
    assert all(s.get("sample_rate") == 24000 for s in starts), starts
    start = client.index_of("audio_start", turn=turn)
    end = client.index_of("audio_end", turn=turn)
    assert start is not None and end is not None and start < end, client.describe()
    audio = client.audio_of_turn(turn)
    assert len(audio) >= 0.2 * 24000 * 2, f"{len(audio)} B of audio for turn {turn}"
    assert len(audio) % 2 == 0, "reply audio is not whole PCM16 samples"
    return audio


async def typed_turn(client: BotClient, text: str, timeout_s: float = REPLY_TIMEOUT_S) -> int:
    """Send a typed utterance, await its whole reply (up to its metrics); return its turn."""
    start = len(client.log)
    await client.send_text(text)
    reply = await client.wait_event("reply", f"a reply to {text!r}", timeout_s, start=start)
    turn = int(reply["turn"])
    await client.wait_event("metrics", f"metrics of turn {turn}", timeout_s, start=start, turn=turn)
    assert_spoken_reply(client, turn)
    return turn


async def spoken_turn(
    client: BotClient, clip: Clip, timeout_s: float = REPLY_TIMEOUT_S, chunk_s: float = CHUNK_S
) -> int:
    """Say `clip` (then silence until the reply is done); return the turn it opened."""
    start = len(client.log)
    done: list[int] = []

    def finished() -> bool:
        return bool(done) and client.index_of("metrics", turn=done[0], start=start) is not None

    speaking = asyncio.create_task(
        client.stream(clip.pcm, then_silence_s=timeout_s, stop=finished, chunk_s=chunk_s)
    )
    try:
        final = await client.wait_event(
            "transcript", f"final transcript of {clip.name}", timeout_s, start=start, final=True
        )
        done.append(int(final["turn"]))
        await client.wait_for(finished, f"metrics of turn {done[0]}", timeout_s)
    finally:
        async with asyncio.timeout(5):
            if not speaking.done() and not done:
                speaking.cancel()
            await asyncio.wait({speaking})
    if not speaking.cancelled():
        speaking.result()
    assert_spoken_reply(client, done[0])
    return done[0]
