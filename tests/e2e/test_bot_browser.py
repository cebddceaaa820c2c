"""The bundled browser client against the real bot, in headless Chromium with a fake mic.

The fake microphone plays ``goforward.wav`` once; the test reads the page's state via
``window.framecast`` and, independently, watches the page's WebSocket from outside
(Playwright ``framereceived``/``framesent``).
"""

from __future__ import annotations

import asyncio
import json
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from client import AUDIO_DIR, BROWSER_FLAGS, CHROMIUM, Bot
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from playwright.async_api import WebSocket, async_playwright

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "artifacts" / "browser.png"
MIC_WAV = AUDIO_DIR / "goforward.wav"
STATE_JS = "JSON.parse(JSON.stringify(window.framecast))"  # the hooks' getters, evaluated


@dataclass
class Wire:
    """What crossed the page's WebSocket, as Playwright saw it."""

    events: list[dict[str, Any]] = field(default_factory=list)
    bytes_received: int = 0
    bytes_sent: int = 0

    def watch(self, ws: WebSocket) -> None:
        ws.on("framereceived", self._received)
        ws.on("framesent", self._sent)

    def _received(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.bytes_received += len(payload)
        else:
            self.events.append(json.loads(payload))

    def _sent(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.bytes_sent += len(payload)


def test_browser_client_talks_to_the_real_bot(bot: Bot) -> None:
    with wave.open(str(MIC_WAV)) as wav:
        assert wav.getsampwidth() == 2, "Chromium plays 24-bit WAVs as silence: use 16-bit"

    async def scenario() -> tuple[dict[str, Any], Wire, list[str]]:
        wire = Wire()
        page_errors: list[str] = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    *BROWSER_FLAGS,
                    "--use-fake-ui-for-media-stream",  # grant the mic without a prompt
                    f"--use-file-for-fake-audio-capture={MIC_WAV}%noloop",
                ],
            )
            try:
                page = await browser.new_page()
                page.on("pageerror", lambda exc: page_errors.append(str(exc)))
                page.on("websocket", wire.watch)
                await page.goto(bot.base_url)
                await page.click("#connect")
                try:
                    await page.wait_for_function(
                        """() => {
                          const f = window.framecast;
                          // a reply was completed (not cut) and all audio has played out
                          const done = Object.values(f.metrics).some((m) => !m.interrupted);
                          const received_s = f.audioBytesReceived / 2 / 24000;
                          const played_s = f.samplesPlayed / f.contextSampleRate;
                          return done && f.samplesPlayed > 0 && f.bufferedSamples === 0
                            && played_s > received_s - 0.05;
                        }""",
                        timeout=90_000,
                    )
                except PlaywrightTimeoutError as exc:
                    stuck = await page.evaluate(STATE_JS)
                    raise AssertionError(f"no complete turn in the page: {stuck}") from exc
                state: dict[str, Any] = await page.evaluate(STATE_JS)
                SCREENSHOT.parent.mkdir(exist_ok=True)
                await page.screenshot(path=str(SCREENSHOT), full_page=True)
            finally:
                await browser.close()
        return state, wire, page_errors

    state, wire, page_errors = asyncio.run(scenario())

    assert not page_errors, page_errors
    assert state["mic"] == "on", state["mic"]
    finals = [t for t in state["transcripts"] if t["final"]]
    assert finals, state["transcripts"]
    assert "forward" in finals[0]["text"].lower(), finals
    # The answered turn: the utterance's own, or a later one when the ~200 ms pause in
    # "go forward | ten meters" ended the turn early and the rest opened a new one.
    (answered,) = [turn for turn, m in state["metrics"].items() if not m["interrupted"]]
    assert int(answered) >= finals[0]["turn"], (answered, finals)
    assert state["replies"].get(answered, "").strip(), state["replies"]
    assert state["audioBytesReceived"] > 0, state
    assert state["samplesPlayed"] > 0, state
    played_s = state["samplesPlayed"] / state["contextSampleRate"]
    received_s = state["audioBytesReceived"] / 2 / 24000
    assert abs(played_s - received_s) < 0.1, f"played {played_s:.2f} s of {received_s:.2f} s"
    assert state["errors"] == [], state["errors"]
    # The page's counters agree with the wire as seen from outside.
    assert 0 < state["audioBytesSent"] <= wire.bytes_sent, (state["audioBytesSent"], wire)
    assert state["audioBytesReceived"] <= wire.bytes_received, (state, wire.bytes_received)
    kinds = [e["type"] for e in wire.events]
    assert kinds[0] == "ready", kinds
    starts = [e for e in wire.events if e["type"] == "audio_start"]
    assert starts, kinds
    assert all(e["sample_rate"] == 24000 for e in starts), starts
    wire_finals = [e for e in wire.events if e["type"] == "transcript" and e["final"]]
    assert wire_finals[0]["text"] == finals[0]["text"], (wire_finals, finals)
