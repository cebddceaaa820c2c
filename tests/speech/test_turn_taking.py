"""Turn-taking on real speech with the real models: gate → Whisper → Smart Turn.

Audio is fed in 20 ms chunks paced by the session clock on a virtual-time loop:
time stands still while a model computes in a worker thread, so the timing of
every decision is exact and the test takes only as long as the models do.
"""

from __future__ import annotations

import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from framecast import (
    AudioIn,
    Direction,
    EndOfTurn,
    Frame,
    Processor,
    Session,
    SystemFrame,
    Transcript,
    UserStartedSpeaking,
    WorkerPool,
)
from framecast.engines import SmartTurnEngine, WhisperEngine
from framecast.models import ModelStore
from framecast.processors import EnergyGate, SmartTurn, WhisperSTT

pytestmark = pytest.mark.slow

AUDIO = Path(__file__).parents[1] / "data" / "audio"
MANIFEST = {e["file"]: e for e in json.loads((AUDIO / "manifest.json").read_text())}
RATE = 16_000
CHUNK = 320  # 20 ms


@pytest.fixture(scope="module")
def engines() -> tuple[WhisperEngine, SmartTurnEngine, WorkerPool, WorkerPool]:
    store = ModelStore()
    stt = WhisperEngine(store.path("whisper-tiny.en"))
    turn = SmartTurnEngine(store.path("smart-turn-v3.2"))
    return stt, turn, WorkerPool(1), WorkerPool(1)


def clip(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / name)) as w:
        assert w.getframerate() == RATE and w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype="<i2")


class Timeline(Processor):
    """Records (clock time, frame) of what reaches the end of the pipeline."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[float, Frame]] = []

    async def process(self, frame: Frame, direction: Direction) -> None:
        if not isinstance(frame, AudioIn):
            self.events.append((self.clock.now(), frame))
        await self.push(frame, direction)

    def of(self, kind: type) -> list[tuple[float, Frame]]:
        return [(t, f) for t, f in self.events if isinstance(f, kind)]


async def feed(audio: np.ndarray, engines: tuple[object, ...]) -> Timeline:
    stt, turn, stt_pool, turn_pool = engines
    sink = Timeline()
    session = Session(
        [EnergyGate(), WhisperSTT(stt, stt_pool), SmartTurn(turn, turn_pool), sink]  # type: ignore[arg-type]
    )
    async with session:
        pcm = audio.tobytes()
        for start in range(0, len(pcm), CHUNK * 2):
            await session.clock.sleep(CHUNK / RATE)
            await session.push(AudioIn(pcm=pcm[start : start + CHUNK * 2], turn=session.turn))
        await session.clock.sleep(0.5)  # let pending decisions finish
    return sink


def words(text: str) -> list[str]:
    digits = {"7": "seven", "10": "ten"}
    return [digits.get(w, w) for w in re.findall(r"[a-z0-9']+", text.lower())]


@pytest.mark.virtual_time
async def test_a_complete_command_ends_the_turn_right_after_the_pause(
    engines: tuple[object, ...],
) -> None:
    entry = MANIFEST["cards_003.wav"]
    sink = await feed(np.concatenate([clip("cards_003.wav"), silence(1.5)]), engines)
    ((end_at, end),) = sink.of(EndOfTurn)
    assert isinstance(end, EndOfTurn) and end.reason == "model" and end.probability > 0.5
    # The clock started one chunk before the first sample: speech ended at speech_end_s + 20 ms.
    delay = end_at - (entry["speech_end_s"] + 0.02)
    assert 0.15 < delay < 0.40, f"end of turn {delay * 1000:.0f} ms after the end of speech"
    finals = [f.text for _, f in sink.of(Transcript) if isinstance(f, Transcript) and f.final]
    assert len(finals) == 1 and words(finals[0]) == words(entry["transcript"])


@pytest.mark.virtual_time
async def test_a_pause_mid_sentence_does_not_end_the_turn(engines: tuple[object, ...]) -> None:
    audio = clip("librivox_0930.wav")
    # Cut inside the sentence, at the quietest 20 ms between 40 % and 60 % of the speech.
    entry = MANIFEST["librivox_0930.wav"]
    lo, hi = (
        int(x * RATE)
        for x in np.interp([0.4, 0.6], [0, 1], [entry["speech_start_s"], entry["speech_end_s"]])
    )
    frames = audio[lo:hi][: (hi - lo) // CHUNK * CHUNK].reshape(-1, CHUNK).astype(np.float64)
    cut = lo + int(np.argmin(np.sqrt((frames**2).mean(axis=1)))) * CHUNK
    pause = 0.8
    sink = await feed(
        np.concatenate([audio[:cut], silence(pause), audio[cut:], silence(3.5)]), engines
    )

    resumed_at = (cut / RATE) + pause
    ends = sink.of(EndOfTurn)
    assert len(ends) == 1, f"expected one end of turn, got {[(round(t, 2), f) for t, f in ends]}"
    assert ends[0][0] > resumed_at + 0.5, "the user was cut off during the pause"
    starts = sink.of(UserStartedSpeaking)
    assert len(starts) == 2 and starts[1][0] > cut / RATE + pause - 0.1  # spoke, paused, resumed
    turns = {f.turn for _, f in sink.events if not isinstance(f, SystemFrame)}
    assert turns == {1}, "the pause must not open a new turn"
    finals = [f.text for _, f in sink.of(Transcript) if isinstance(f, Transcript) and f.final]
    assert len(finals) == 2  # one final per pause
    heard, said = words(" ".join(finals)), words(entry["transcript"])
    errors = sum(1 for w in said if w not in heard)
    assert errors <= 2, f"heard {heard}, said {said}"
