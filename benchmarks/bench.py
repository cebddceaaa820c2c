"""Load harness: simulated browser clients talking to a framecast voice bot over ``/ws/audio``.

    .venv/bin/python benchmarks/bench.py --start --levels 1,5,10 --turns 3 \\
        --csv out/turns.csv --json out/summary.json --plot out/latency.png
    .venv/bin/python benchmarks/bench.py --url ws://127.0.0.1:8000/ws/audio --levels 1,2

Each client is one browser tab: it streams a WAV as its microphone (16 kHz mono PCM16,
20 ms chunks, paced in real time unless ``--no-realtime``), keeps streaming silence
between utterances like a real mic, waits for the reply, listens to it (its audio
duration, capped), pauses, and speaks the next clip. Concurrency levels run one after
another.

What is measured, per turn, on the client's monotonic clock:

* **TTFA** = arrival of the reply's first binary audio minus the moment the chunk holding
  the clip's *last voiced sample* was sent (``speech_end_s`` from the clip's
  ``manifest.json``, else the last 20 ms frame with RMS > 600). That is when a person
  starts waiting; the end of the upload is not.
* **full reply** = arrival of the reply's ``audio_end`` minus the same origin.
* **failures**: no reply audio within ``--timeout`` (or no ``audio_end`` within
  ``--reply-timeout``), ``error`` events, disconnects, a reply cut
  by ``audio_cancel``, a reply without audio, and *premature replies* (an ``audio_start``
  arriving before the last voiced sample was sent: the bot answered a pause).

Per level: replies/s (completed replies over the level's wall time, which ends with the
last reply rather than with the last listening pause), the medians of the server's
``metrics`` events, and the server's event-loop lag from the ``/metrics`` histogram
delta over the level. Latency percentiles use successful turns only.

The machine running this is also the machine running the bot when ``--start`` is used:
the clients' own CPU use (about 50 small sends a second each) counts against the bot.
``client late`` in the table is how late the harness woke up to send a mic chunk; if it
is large, the harness, not the bot, was the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

__all__ = [
    "STAGES",
    "Clip",
    "LevelResult",
    "TurnRecord",
    "histogram_quantile",
    "load_clips",
    "main",
    "parse_histogram",
    "speech_end_by_rms",
]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_AUDIO = REPO / "tests" / "data" / "audio"

RATE_IN = 16_000
CHUNK_S = 0.020
CHUNK_BYTES = int(RATE_IN * CHUNK_S) * 2
SILENCE = bytes(CHUNK_BYTES)
VOICED_RMS = 600.0
LOOP_LAG_METRIC = "framecast_event_loop_lag_seconds"

#: Server stage metrics (ms from the end of user speech as the server saw it), in order.
STAGES: tuple[str, ...] = (
    "end_of_turn_ms",
    "transcript_final_ms",
    "llm_request_ms",
    "llm_first_token_ms",
    "first_sentence_ms",
    "tts_first_audio_ms",
    "first_audio_out_ms",
    "reply_done_ms",
)

#: The reference system's published figures (not re-measured here).
REFERENCE: tuple[dict[str, Any], ...] = (
    {
        "system": "reference V1 monolith",
        "users": 10,
        "ttfa_ms": None,
        "e2e_ms": 2192.0,
        "rps": 0.65,
    },
    {
        "system": "reference V2 queues + vLLM",
        "users": 10,
        "ttfa_ms": None,
        "e2e_ms": 1447.0,
        "rps": 1.19,
    },
    {
        "system": "reference V3 streaming",
        "users": 10,
        "ttfa_ms": 165.0,
        "e2e_ms": None,
        "rps": 1.53,
    },
)
REFERENCE_HARDWARE = "1x NVIDIA RTX 3060 GPU"


# --- clips ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clip:
    """A WAV as 16 kHz mono PCM16, with where its speech ends."""

    name: str
    pcm: bytes
    speech_end_s: float

    @property
    def duration_s(self) -> float:
        """Length of the clip."""
        return len(self.pcm) / 2 / RATE_IN

    @property
    def last_voiced_byte(self) -> int:
        """Byte offset of the last voiced sample."""
        samples = len(self.pcm) // 2
        index = min(samples - 1, max(0, math.ceil(self.speech_end_s * RATE_IN) - 1))
        return index * 2


def speech_end_by_rms(samples: np.ndarray, threshold: float = VOICED_RMS) -> float | None:
    """End (s) of the last 20 ms frame whose RMS is above ``threshold``; None if none is."""
    frame = int(RATE_IN * CHUNK_S)
    whole = len(samples) // frame * frame
    if whole == 0:
        return None
    frames = samples[:whole].astype(np.float64).reshape(-1, frame)
    voiced = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > threshold)
    if voiced.size == 0:
        return None
    return float(voiced[-1] + 1) * CHUNK_S


def _read_wav(path: Path) -> np.ndarray:
    """PCM16 WAV -> int16 mono at 16 kHz (down-mixed and linearly resampled if needed)."""
    with wave.open(str(path), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width != 2:
        raise ValueError(f"{path}: only 16-bit PCM WAVs are supported (got {8 * width}-bit)")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64).reshape(-1, channels).mean(axis=1)
    if rate != RATE_IN:
        n_out = round(len(samples) * RATE_IN / rate)
        samples = np.interp(np.arange(n_out) * rate / RATE_IN, np.arange(len(samples)), samples)
    pcm: np.ndarray = np.clip(np.round(samples), -32768, 32767).astype("<i2")
    return pcm


def _manifest(directory: Path) -> dict[str, dict[str, Any]]:
    path = directory / "manifest.json"
    if not path.is_file():
        return {}
    entries = json.loads(path.read_text())
    return {str(e["file"]): e for e in entries if isinstance(e, dict) and "file" in e}


def load_clips(paths: Sequence[Path]) -> list[Clip]:
    """Load WAVs; speech end from the directory's manifest.json, else by the RMS gate.

    Raises:
        ValueError: a file is not a 16-bit WAV or has no voiced frame.
    """
    clips: list[Clip] = []
    for path in paths:
        samples = _read_wav(path)
        entry = _manifest(path.parent).get(path.name)
        end = float(entry["speech_end_s"]) if entry and "speech_end_s" in entry else None
        if end is None:
            end = speech_end_by_rms(samples)
        if end is None:
            raise ValueError(f"{path}: no 20 ms frame with RMS > {VOICED_RMS:.0f}; is it speech?")
        clips.append(Clip(name=path.name, pcm=samples.tobytes(), speech_end_s=end))
    return clips


# --- one simulated browser ------------------------------------------------------------------


@dataclass(slots=True)
class _Utterance:
    """A clip being spoken into the mic."""

    clip: Clip
    offset: int = 0
    last_voiced_at: float | None = None
    done_at: float | None = None


@dataclass(slots=True)
class _Reply:
    """What arrived of one server reply (one ``audio_start``)."""

    turn: int
    started_at: float
    sample_rate: int
    first_audio_at: float | None = None
    ended_at: float | None = None
    cancelled_at: float | None = None
    audio_bytes: int = 0

    @property
    def audio_s(self) -> float:
        return self.audio_bytes / 2 / self.sample_rate if self.sample_rate else 0.0


@dataclass(slots=True)
class TurnRecord:
    """One CSV row: a user turn and how the bot answered it."""

    label: str
    level: int
    client: int
    turn: int
    wav: str
    ttfa_ms: float | None = None
    reply_ms: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    failure: str = ""
    server_turn: int | None = None
    reply_audio_s: float | None = None
    transcript: str = ""
    reply_text: str = ""
    interrupted: bool | None = None
    premature_by_ms: float | None = None  # how long before the speech ended a reply began
    events: str = ""  # what arrived during the turn, by type
    finished_at: float | None = None  # harness clock: when the reply ended or failed

    @property
    def ok(self) -> bool:
        """The turn got a complete reply and nothing went wrong."""
        return not self.failure

    def row(self) -> dict[str, Any]:
        """The CSV row (stage metrics flattened)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("stages", "finished_at")}
        for stage in STAGES:
            out[stage] = self.stages.get(stage)
        return out


CSV_FIELDS = [
    "label",
    "level",
    "client",
    "turn",
    "wav",
    "ttfa_ms",
    "reply_ms",
    *STAGES,
    "failure",
    "server_turn",
    "reply_audio_s",
    "interrupted",
    "premature_by_ms",
    "transcript",
    "reply_text",
    "events",
]


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What every client of a run shares."""

    url: str
    label: str
    turns: int
    realtime: bool
    timeout_s: float
    reply_timeout_s: float
    listen_cap_s: float
    pause_s: float
    stagger_s: float


class Trace:
    """Every message the clients receive, as JSON lines (binary audio as its size):
    the raw material for explaining an odd turn."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w")
        self._t0 = time.monotonic()

    def write(self, client: str, message: str | bytes) -> None:
        """Record one received message."""
        t = round(time.monotonic() - self._t0, 3)
        if isinstance(message, bytes):
            line = json.dumps({"t": t, "client": client, "binary": len(message)})
        else:
            line = json.dumps({"t": t, "client": client, "event": message})
        self._file.write(line + "\n")

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


class BotClient:
    """One browser tab on one connection: a mic task, a reader task, and turns on top.

    The mic never stops: it sends the clip being spoken, else 20 ms of zeros, every
    20 ms. The reader records every server message as it arrives. :meth:`run_turn`
    speaks one clip and waits, with bounds, for the reply it caused.
    """

    def __init__(
        self, ws: ClientConnection, config: RunConfig, tag: str, trace: Trace | None
    ) -> None:
        self._ws = ws
        self._config = config
        self._tag = tag
        self._trace = trace
        self.seen: Counter[str] = Counter()
        self._changed = asyncio.Event()
        self._utterance: _Utterance | None = None
        self._open: _Reply | None = None
        self.replies: dict[int, _Reply] = {}
        self.metrics: dict[int, dict[str, Any]] = {}
        self.transcripts: dict[int, str] = {}
        self.reply_text: dict[int, str] = {}
        self.errors: list[tuple[float, str]] = []
        self.anomalies: Counter[str] = Counter()
        self.late_max_s = 0.0
        self.ready = False
        self.closed = False
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, config: RunConfig, tag: str, trace: Trace | None) -> BotClient:
        """Connect, say hello, wait (bounded) for ``ready``, start the mic and the reader."""
        ws = await connect(
            config.url,
            open_timeout=10,
            close_timeout=2,
            compression=None,
            proxy=None,
            max_size=None,
        )
        client = cls(ws, config, tag, trace)
        client._tasks = [
            asyncio.create_task(client._read(), name="bench reader"),
            asyncio.create_task(client._mic(), name="bench mic"),
        ]
        try:
            await ws.send(json.dumps({"type": "hello", "client": "framecast-bench"}))
            loop = asyncio.get_running_loop()
            if not await client._wait(lambda: client.ready, loop.time() + 5.0):
                client.anomalies["no ready within 5 s of hello"] += 1
        except BaseException:
            await client.aclose()
            raise
        return client

    async def aclose(self) -> None:
        """Close the connection and join both tasks (bounded; idempotent)."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=3)
        self._tasks = []
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 3)
        self.closed = True

    # --- tasks ---------------------------------------------------------------------------

    async def _mic(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while True:
                utt = self._utterance
                chunk, holds_last = SILENCE, False
                if utt is not None:
                    start = utt.offset
                    chunk = utt.clip.pcm[start : start + CHUNK_BYTES].ljust(CHUNK_BYTES, b"\0")
                    holds_last = start <= utt.clip.last_voiced_byte < start + CHUNK_BYTES
                    utt.offset = start + CHUNK_BYTES
                await self._ws.send(chunk)
                now = loop.time()
                if utt is not None:
                    if holds_last:
                        utt.last_voiced_at = now
                        self._changed.set()
                    if utt.offset >= len(utt.clip.pcm):
                        utt.done_at = now
                        self._utterance = None
                        self._changed.set()
                    elif not self._config.realtime:  # upload as fast as possible
                        due = now
                        await asyncio.sleep(0)
                        continue
                due += CHUNK_S
                await asyncio.sleep(max(0.0, due - loop.time()))
                late = loop.time() - due
                self.late_max_s = max(self.late_max_s, late)
                if late > 0.2:  # far behind: resume the pace instead of bursting
                    due = loop.time()
        except (ConnectionClosed, OSError):
            pass
        finally:
            self.closed = True
            self._changed.set()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for message in self._ws:
                now = loop.time()
                if self._trace is not None:
                    self._trace.write(self._tag, message)
                if isinstance(message, bytes):
                    self.seen["audio"] += 1
                    self._on_audio(message, now)
                else:
                    self._on_event(message, now)
                self._changed.set()
        except (ConnectionClosed, OSError):
            pass
        finally:
            self.closed = True
            self._changed.set()

    def _on_audio(self, data: bytes, now: float) -> None:
        reply = self._open
        if reply is None:
            self.anomalies["binary audio outside audio_start/audio_end"] += 1
            return
        if reply.first_audio_at is None:
            reply.first_audio_at = now
        reply.audio_bytes += len(data)

    def _on_event(self, text: str, now: float) -> None:
        try:
            payload = json.loads(text)
            kind = payload["type"]
        except (ValueError, KeyError, TypeError):
            self.anomalies["text message that is not a JSON event"] += 1
            return
        turn = payload.get("turn")
        self.seen[str(kind)] += 1
        if kind == "ready":
            self.ready = True
        elif kind == "error":
            self.errors.append((now, str(payload.get("code", "error"))))
        elif not isinstance(turn, int):
            if kind in ("audio_start", "audio_end", "audio_cancel", "metrics"):
                self.anomalies[f"{kind} without an integer turn"] += 1
        elif kind == "audio_start":
            if turn in self.replies:
                self.anomalies["second audio_start for one turn"] += 1
            else:
                self.replies[turn] = _Reply(turn, now, int(payload.get("sample_rate", 24000)))
            self._open = self.replies[turn]
        elif kind in ("audio_end", "audio_cancel"):
            reply = self.replies.get(turn)
            if reply is None:
                if kind == "audio_end":
                    self.anomalies["audio_end without audio_start"] += 1
                return
            if kind == "audio_end":
                reply.ended_at = now
            elif reply.ended_at is None:
                reply.cancelled_at = now
            if self._open is reply:
                self._open = None
        elif kind == "metrics":
            self.metrics[turn] = payload
            if payload.get("interrupted"):
                # The harness never talks over a reply, so this is a false barge-in.
                self.anomalies["turn reported interrupted (false barge-in)"] += 1
        elif kind == "transcript" and payload.get("final"):
            self.transcripts[turn] = str(payload.get("text", ""))
        elif kind == "reply":
            self.reply_text[turn] = self.reply_text.get(turn, "") + str(payload.get("text", ""))

    async def _wait(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Wait until ``predicate()`` holds, the connection is gone, or ``deadline``."""
        loop = asyncio.get_running_loop()
        while not predicate():
            remaining = deadline - loop.time()
            if self.closed or remaining <= 0:
                return False
            self._changed.clear()  # no await between the check and the wait: no lost wake-up
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    # --- one turn ------------------------------------------------------------------------

    async def run_turn(self, clip: Clip, record: TurnRecord) -> None:
        """Speak ``clip``, wait for the reply, listen to it; fill ``record``. Never raises
        on the bot's behaviour (only on cancellation)."""
        loop = asyncio.get_running_loop()
        cfg = self._config
        # Turns the server already closed (final transcript) or answered belong to earlier
        # utterances: their late replies are neither ours nor premature.
        known = set(self.replies) | set(self.transcripts)
        errors_before = len(self.errors)
        seen_before = self.seen.copy()
        utt = self._utterance = _Utterance(clip)
        if not await self._wait(
            lambda: utt.last_voiced_at is not None, loop.time() + clip.duration_s + 10
        ):
            record.failure = "disconnected" if self.closed else "mic stalled"
            record.finished_at = loop.time()
            return
        origin = utt.last_voiced_at
        assert origin is not None

        def new_replies() -> list[_Reply]:
            return sorted(
                (r for t, r in self.replies.items() if t not in known), key=lambda r: r.started_at
            )

        def ours() -> _Reply | None:
            return next((r for r in new_replies() if r.started_at >= origin), None)

        def finished() -> bool:
            reply = ours()
            return reply is not None and (
                reply.ended_at is not None or reply.cancelled_at is not None
            )

        def heard() -> bool:
            reply = ours()
            return finished() or (reply is not None and reply.first_audio_at is not None)

        got = await self._wait(heard, origin + cfg.timeout_s)
        if got:
            got = await self._wait(finished, origin + cfg.reply_timeout_s)
        reply = ours()
        failures: list[str] = []
        early = [r for r in new_replies() if r.started_at < origin]
        if early:
            failures.append("premature reply")
            record.premature_by_ms = round((origin - early[0].started_at) * 1000, 1)
        failures += sorted({f"error:{code}" for _, code in self.errors[errors_before:]})
        if self.closed and not finished():
            failures.append("disconnected")
        elif not got and not heard():
            failures.append(f"timeout: no reply audio in {cfg.timeout_s:g} s")
        elif not got:
            failures.append(f"timeout: reply not done in {cfg.reply_timeout_s:g} s")
        elif reply is not None and reply.cancelled_at is not None:
            failures.append("audio_cancel")
        elif reply is not None and reply.first_audio_at is None:
            failures.append("reply without audio")
        record.failure = "; ".join(failures)
        record.finished_at = loop.time()
        record.events = " ".join(f"{k}:{v}" for k, v in (self.seen - seen_before).items())
        if reply is None:
            return
        record.server_turn = reply.turn
        record.reply_audio_s = round(reply.audio_s, 3)
        if reply.first_audio_at is not None:
            record.ttfa_ms = round((reply.first_audio_at - origin) * 1000, 1)
        if reply.ended_at is not None:
            record.reply_ms = round((reply.ended_at - origin) * 1000, 1)
            record.finished_at = reply.ended_at
            await self._listen(reply, utt)
        self._fill(record)

    async def _listen(self, reply: _Reply, utt: _Utterance) -> None:
        """Be a person: hear the reply out (as a gapless player would play it), pause."""
        loop = asyncio.get_running_loop()
        cfg = self._config
        assert reply.ended_at is not None
        playback_end = (reply.first_audio_at or reply.ended_at) + reply.audio_s
        until = (
            min(max(reply.ended_at, playback_end), reply.ended_at + cfg.listen_cap_s) + cfg.pause_s
        )
        await self._wait(lambda: reply.turn in self.metrics, max(until, reply.ended_at + 2.0))
        await self._wait(lambda: utt.done_at is not None, until + utt.clip.duration_s)
        await asyncio.sleep(max(0.0, until - loop.time()))

    def _fill(self, record: TurnRecord) -> None:
        turn = record.server_turn
        if turn is None:
            return
        metrics = self.metrics.get(turn, {})
        record.stages = {
            s: float(metrics[s]) for s in STAGES if isinstance(metrics.get(s), int | float)
        }
        if "interrupted" in metrics:
            record.interrupted = bool(metrics["interrupted"])
        record.transcript = self.transcripts.get(turn, "")
        record.reply_text = self.reply_text.get(turn, "").strip()


# --- a level ---------------------------------------------------------------------------------


@dataclass(slots=True)
class LevelResult:
    """Every turn of one concurrency level, plus what the server and harness reported."""

    level: int
    records: list[TurnRecord]
    wall_s: float
    loop_lag: dict[str, float] | None
    client_late_max_ms: float
    anomalies: dict[str, int]

    def summary(self) -> dict[str, Any]:
        """The level's numbers for the table and the JSON."""
        ok = [r for r in self.records if r.ok]
        ttfa = [r.ttfa_ms for r in ok if r.ttfa_ms is not None]
        full = [r.reply_ms for r in ok if r.reply_ms is not None]
        reasons = Counter(r.failure.split("; ")[0] for r in self.records if r.failure)
        stages = {s: _pct([r.stages[s] for r in ok if s in r.stages], 50) for s in STAGES}
        untranscribed = sum(1 for r in ok if not r.transcript)
        return {
            "level": self.level,
            "turns": len(self.records),
            "ok": len(ok),
            "failures": len(self.records) - len(ok),
            "failure_reasons": dict(reasons),
            "ttfa_p50_ms": _pct(ttfa, 50),
            "ttfa_p95_ms": _pct(ttfa, 95),
            "reply_p50_ms": _pct(full, 50),
            "reply_p95_ms": _pct(full, 95),
            "replies_per_s": round(len(ok) / self.wall_s, 3) if self.wall_s > 0 else None,
            "wall_s": round(self.wall_s, 2),
            "loop_lag": self.loop_lag,
            "client_late_max_ms": round(self.client_late_max_ms, 1),
            "stage_medians_ms": stages,
            "replies_without_transcript": untranscribed,
            "anomalies": self.anomalies,
        }


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


async def _run_client(
    config: RunConfig,
    level: int,
    index: int,
    clips: Sequence[Clip],
    out: list[TurnRecord],
    stats: dict[str, Any],
    trace: Trace | None = None,
) -> None:
    """One simulated user for ``config.turns`` turns; reconnects after a lost connection."""
    await asyncio.sleep(index * config.stagger_s)
    client: BotClient | None = None
    try:
        for turn in range(config.turns):
            clip = clips[(index + turn) % len(clips)]
            record = TurnRecord(config.label, level, index, turn, clip.name)
            out.append(record)
            try:
                if client is None or client.closed:
                    if client is not None:
                        await _retire(client, stats)
                    client = None
                    client = await BotClient.open(config, f"L{level}c{index}", trace)
                await client.run_turn(clip, record)
            except InvalidStatus as exc:
                record.failure = f"connect: HTTP {exc.response.status_code}"
            except (OSError, TimeoutError, ConnectionClosed) as exc:
                record.failure = f"connect: {type(exc).__name__}"
            except Exception as exc:  # noqa: BLE001 - one client's bug must not end the run
                record.failure = f"client error: {type(exc).__name__}: {exc}"[:200]
            if record.finished_at is None:
                record.finished_at = asyncio.get_running_loop().time()
                await asyncio.sleep(1.0)  # do not hammer a refusing server
    finally:
        if client is not None:
            await _retire(client, stats)


async def _retire(client: BotClient, stats: dict[str, Any]) -> None:
    await client.aclose()
    stats["late_max_s"] = max(stats["late_max_s"], client.late_max_s)
    stats["anomalies"].update(client.anomalies)


async def run_level(
    config: RunConfig,
    level: int,
    clips: Sequence[Clip],
    metrics_url: str,
    trace: Trace | None = None,
) -> LevelResult:
    """Run ``level`` clients at once; bounded by a deadline, whatever the bot does."""
    loop = asyncio.get_running_loop()
    before = await asyncio.to_thread(_fetch_text, metrics_url)
    records: list[TurnRecord] = []
    stats: dict[str, Any] = {"late_max_s": 0.0, "anomalies": Counter()}
    longest = max(c.duration_s for c in clips)
    deadline = (
        level * config.stagger_s
        + config.turns
        * (longest + config.reply_timeout_s + config.listen_cap_s + config.pause_s + 5)
        + 15
    )
    start = loop.time()
    tasks = [
        asyncio.create_task(
            _run_client(config, level, i, clips, records, stats, trace), name=f"client {i}"
        )
        for i in range(level)
    ]
    _done, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=10)
    for record in records:
        if record.finished_at is None and not record.failure:
            record.failure = "level deadline"
    ran = {(r.client, r.turn) for r in records}
    for i in range(level):
        for turn in range(config.turns):
            if (i, turn) not in ran:
                wav = clips[(i + turn) % len(clips)].name
                records.append(
                    TurnRecord(config.label, level, i, turn, wav, failure="level deadline")
                )
    ends = [r.finished_at for r in records if r.finished_at is not None]
    wall = (max(ends) if ends else loop.time()) - start
    after = await asyncio.to_thread(_fetch_text, metrics_url)
    records.sort(key=lambda r: (r.client, r.turn))
    return LevelResult(
        level=level,
        records=records,
        wall_s=wall,
        loop_lag=_loop_lag(before, after),
        client_late_max_ms=stats["late_max_s"] * 1000,
        anomalies=dict(stats["anomalies"]),
    )


# --- /metrics ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")


def parse_histogram(text: str, name: str) -> tuple[list[tuple[float, float]], float, float] | None:
    """A Prometheus histogram (no extra labels) as (cumulative ``(le, count)`` sorted, sum,
    count); None if absent."""
    buckets: list[tuple[float, float]] = []
    total = count = None
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        metric, labels, value = match["name"], match["labels"] or "", float(match["value"])
        if metric == f"{name}_bucket":
            le = re.search(r'le="([^"]+)"', labels)
            if le is not None:
                buckets.append((float(le[1]), value))
        elif metric == f"{name}_sum":
            total = value
        elif metric == f"{name}_count":
            count = value
    if not buckets or total is None or count is None:
        return None
    return sorted(buckets), total, count


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Quantile ``q`` (0-1) of cumulative buckets, interpolated linearly inside a bucket
    (as Prometheus does); the top finite bound when it falls in ``+Inf``."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower_bound
            span = cumulative - lower_count
            return lower_bound + (bound - lower_bound) * (
                (rank - lower_count) / span if span else 1.0
            )
        lower_bound, lower_count = bound, cumulative
    return lower_bound


def _loop_lag(before: str | None, after: str | None) -> dict[str, float] | None:
    """Event-loop lag over a level: the histogram delta between two scrapes, in ms."""
    if after is None:
        return None
    end = parse_histogram(after, LOOP_LAG_METRIC)
    if end is None:
        return None
    start = parse_histogram(before, LOOP_LAG_METRIC) if before else None
    start_counts = dict(start[0]) if start else {}
    buckets = [(le, c - start_counts.get(le, 0.0)) for le, c in end[0]]
    count = end[2] - (start[2] if start else 0.0)
    total = end[1] - (start[1] if start else 0.0)
    if count <= 0:
        return None
    p50, p99 = histogram_quantile(buckets, 0.5), histogram_quantile(buckets, 0.99)
    prev, top = 0.0, 0.0
    for le, cumulative in buckets:  # highest bucket that gained a sample bounds the max
        if cumulative > prev:
            top = le
        prev = cumulative
    finite = [le for le, _ in buckets if not math.isinf(le)]
    return {
        "samples": count,
        "mean_ms": round(total / count * 1000, 2),
        "p50_ms": round((p50 or 0.0) * 1000, 2),
        "p99_ms": round((p99 or 0.0) * 1000, 2),
        # "max <= bound"; a sample in +Inf means above the top finite bound
        "max_le_ms": round((top if not math.isinf(top) else max(finite, default=0.0)) * 1000, 2),
        "max_over_top_bucket": float(math.isinf(top)),
    }


def _http_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))  # local bot: no proxy


def _fetch_text(url: str, timeout: float = 3.0) -> str | None:
    try:
        with _http_opener().open(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body.decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - a missing /metrics only drops the loop-lag column
        return None


def _http_base(ws_url: str) -> str:
    scheme, rest = ws_url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{'https' if scheme == 'wss' else 'http'}://{host}"


# --- the bot process (--start) ------------------------------------------------------------------


class BotProcess:
    """``framecast run`` on a free port, its output in a log file; stopped by signal."""

    def __init__(self, extra_args: Sequence[str], log_path: Path, start_timeout_s: float) -> None:
        self.port = _free_port()
        exe = Path(sys.executable).with_name("framecast")
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "framecast.cli"]
        self.command = [
            *command,
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *extra_args,
        ]
        self.log_path = log_path
        self._start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/audio"

    def start(self) -> None:
        """Launch and wait until ``/health`` says 200.

        Raises:
            RuntimeError: the bot exited or was not healthy in time (log tail included).
        """
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        health = f"http://127.0.0.1:{self.port}/health"
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"the bot exited with {self._proc.returncode}:\n{self._log_tail()}"
                )
            try:
                with _http_opener().open(health, timeout=2) as response:
                    if response.status == 200:
                        return
            except Exception:  # noqa: BLE001, S110 - not up yet (refused, 503, ...)
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"the bot was not healthy after {self._start_timeout_s:g} s:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """SIGINT (the bot's graceful stop), then SIGTERM, then SIGKILL (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
                return

    def _log_tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- reporting ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """The hardware our numbers come from."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = (
        "GPU present (unused)"
        if shutil.which("nvidia-smi") or Path("/dev/nvidia0").exists()
        else "no GPU"
    )
    cores = os.cpu_count() or 0
    return {
        "cpu": cpu,
        "cores": cores,
        "gpu": gpu,
        "hardware": f"{cpu}, {cores} cores, {gpu}",
        "python": platform.python_version(),
    }


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, rule, *body])


def report(summaries: Sequence[dict[str, Any]], hw: dict[str, Any], label: str) -> str:
    """The three tables: per level, stage medians per level, reference vs ours."""
    main_rows = []
    for s in summaries:
        lag = s["loop_lag"]
        lag_text = (
            "n/a"
            if lag is None
            else f"{lag['p50_ms']:.1f}/{lag['p99_ms']:.1f} (mean {lag['mean_ms']:.1f})"
        )
        reasons = ", ".join(f"{k} ×{v}" for k, v in s["failure_reasons"].items())
        main_rows.append(
            [
                str(s["level"]),
                str(s["turns"]),
                f"{s['failures']}" + (f" ({reasons})" if reasons else ""),
                f"{_fmt(s['ttfa_p50_ms'])} / {_fmt(s['ttfa_p95_ms'])}",
                f"{_fmt(s['reply_p50_ms'])} / {_fmt(s['reply_p95_ms'])}",
                _fmt(s["replies_per_s"], 3),
                lag_text,
                _fmt(s["client_late_max_ms"]),
            ]
        )
    stage_rows = [
        [str(s["level"]), *(_fmt(s["stage_medians_ms"][st]) for st in STAGES)] for s in summaries
    ]
    ref_rows = [
        [
            r["system"],
            REFERENCE_HARDWARE,
            str(r["users"]),
            _fmt(r["ttfa_ms"]),
            _fmt(r["e2e_ms"]),
            _fmt(r["rps"], 2),
        ]
        for r in REFERENCE
    ]
    ref_rows += [
        [
            f"{label} (this run)",
            hw["hardware"],
            str(s["level"]),
            _fmt(s["ttfa_p50_ms"]),
            _fmt(s["reply_p50_ms"]),
            _fmt(s["replies_per_s"], 2),
        ]
        for s in summaries
    ]
    return "\n\n".join(
        [
            _table(
                [
                    "users",
                    "turns",
                    "failures",
                    "TTFA p50/p95 ms",
                    "full reply p50/p95 ms",
                    "replies/s",
                    "server loop lag p50/p99 ms",
                    "client late max ms",
                ],
                main_rows,
            ),
            "Server stage medians (ms from the end of user speech, as the server saw it):\n"
            + _table(["users", *(st.removesuffix("_ms") for st in STAGES)], stage_rows),
            "Reference (published, not re-measured) vs this run. Reference V1/V2 report "
            "end-to-end latency, V3 TTFA; ours: TTFA p50 and full-reply p50 from the end "
            "of user speech:\n"
            + _table(
                ["system", "hardware", "users", "TTFA ms", "e2e / full reply ms", "replies/s"],
                ref_rows,
            ),
        ]
    )


def write_csv(path: Path, records: Sequence[TurnRecord]) -> None:
    """One row per turn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for record in records:
            writer.writerow(record.row())


def write_plot(path: Path, summaries: Sequence[dict[str, Any]], title: str) -> None:
    """TTFA and full-reply p50/p95 vs concurrency; replies/s on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [s["level"] for s in summaries]

    def series(key: str) -> list[float]:
        return [math.nan if s[key] is None else float(s[key]) for s in summaries]

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(levels, series("ttfa_p50_ms"), "o-", color="tab:blue", label="TTFA p50")
    ax.plot(levels, series("ttfa_p95_ms"), "o--", color="tab:blue", alpha=0.6, label="TTFA p95")
    ax.plot(levels, series("reply_p50_ms"), "s-", color="tab:orange", label="full reply p50")
    ax.plot(
        levels, series("reply_p95_ms"), "s--", color="tab:orange", alpha=0.6, label="full reply p95"
    )
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("ms from the end of user speech")
    ax.set_xticks(levels)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    rps_axis = ax.twinx()
    rps_axis.plot(levels, series("replies_per_s"), "^:", color="tab:green", label="replies/s")
    rps_axis.set_ylabel("replies/s")
    rps_axis.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + rps_axis.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="ws://host:port/ws/audio of a running bot")
    target.add_argument(
        "--start", action="store_true", help="launch `framecast run` on a free port"
    )
    parser.add_argument(
        "--bot-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra flag for `framecast run` (repeat; write --bot-arg=--turn-mode=silence)",
    )
    parser.add_argument(
        "--bot-log", type=Path, help="where the started bot's output goes (default: a temp file)"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=180.0, help="s to wait for /health 200"
    )
    parser.add_argument(
        "--wav", type=Path, nargs="+", help="clips (default: tests/data/audio/*.wav)"
    )
    parser.add_argument("--turns", type=int, default=3, help="turns per client")
    parser.add_argument(
        "--levels", default="1,5,10", help="comma-separated concurrency levels, run in order"
    )
    parser.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pace speech in real time (--no-realtime: upload each clip at once)",
    )
    parser.add_argument(
        "--timeout", type=float, default=20.0, help="s from speech end to the reply's first audio"
    )
    parser.add_argument(
        "--reply-timeout", type=float, default=60.0, help="s from speech end to audio_end"
    )
    parser.add_argument(
        "--listen-cap", type=float, default=8.0, help="most s spent hearing a reply out"
    )
    parser.add_argument(
        "--pause", type=float, default=0.5, help="s the person waits before speaking again"
    )
    parser.add_argument("--stagger", type=float, default=0.25, help="s between client starts")
    parser.add_argument("--label", default="framecast")
    parser.add_argument("--csv", type=Path, help="one row per turn")
    parser.add_argument("--json", type=Path, help="summary")
    parser.add_argument("--plot", type=Path, help="PNG of latency and replies/s vs concurrency")
    parser.add_argument("--trace", type=Path, help="JSON lines of every message received")
    return parser


def _levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise SystemExit("--levels needs positive integers, e.g. 1,5,10")
    return levels


async def _run_levels(
    config: RunConfig, levels: Sequence[int], clips: Sequence[Clip], trace: Trace | None
) -> list[LevelResult]:
    metrics_url = _http_base(config.url) + "/metrics"
    results = []
    for level in levels:
        print(
            f"level {level}: {level} client(s) x {config.turns} turn(s) ...",
            file=sys.stderr,
            flush=True,
        )
        result = await run_level(config, level, clips, metrics_url, trace)
        s = result.summary()
        print(
            f"level {level}: {s['ok']}/{s['turns']} ok, TTFA p50 {_fmt(s['ttfa_p50_ms'])} ms, "
            f"{_fmt(s['replies_per_s'], 3)} replies/s",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
        await asyncio.sleep(1.0)  # let the bot close the level's sessions
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (1 if the bot could not be started)."""
    args = build_parser().parse_args(argv)
    levels = _levels(args.levels)
    wavs = args.wav or sorted(DEFAULT_AUDIO.glob("*.wav"))
    if not wavs:
        raise SystemExit(f"no WAV files given and none in {DEFAULT_AUDIO}")
    clips = load_clips(wavs)
    bot: BotProcess | None = None
    url = args.url
    if args.start:
        extra = list(args.bot_arg)
        if max(levels) > 10 and not any(a.startswith("--max-sessions") for a in extra):
            extra += ["--max-sessions", str(max(levels))]  # the bot refuses sessions above 10
        log = args.bot_log or Path(tempfile.mkstemp(prefix="framecast-bot-", suffix=".log")[1])
        bot = BotProcess(extra, log, args.start_timeout)
        print(f"starting: {' '.join(bot.command)} (log: {log})", file=sys.stderr, flush=True)
        try:
            bot.start()
        except RuntimeError as exc:
            bot.stop()
            print(f"error: {exc}", file=sys.stderr)
            return 1
        url = bot.ws_url
    config = RunConfig(
        url=url,
        label=args.label,
        turns=args.turns,
        realtime=args.realtime,
        timeout_s=args.timeout,
        reply_timeout_s=max(args.timeout, args.reply_timeout),
        listen_cap_s=args.listen_cap,
        pause_s=args.pause,
        stagger_s=args.stagger,
    )
    started = time.time()
    trace = Trace(args.trace) if args.trace else None
    try:
        results = asyncio.run(_run_levels(config, levels, clips, trace))
    finally:
        if trace is not None:
            trace.close()
        if bot is not None:
            bot.stop()
    hw = machine()
    summaries = [r.summary() for r in results]
    print(report(summaries, hw, args.label))
    for s in summaries:
        odd = dict(s["anomalies"])
        if s["replies_without_transcript"]:
            odd["reply to a turn without a final transcript"] = s["replies_without_transcript"]
        if odd:
            print(
                f"\nanomalies at {s['level']} users: "
                + ", ".join(f"{k} ×{v}" for k, v in odd.items())
            )
    records = [rec for r in results for rec in r.records]
    if args.csv:
        write_csv(args.csv, records)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "label": args.label,
            "started_unix": round(started),
            "machine": hw,
            "config": {
                **asdict(config),
                "levels": levels,
                "wavs": [c.name for c in clips],
                "bot_command": bot.command if bot else None,
            },
            "levels": summaries,
            "reference": [{**r, "hardware": REFERENCE_HARDWARE} for r in REFERENCE],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    if args.plot:
        write_plot(args.plot, summaries, f"{args.label} on {hw['hardware']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
