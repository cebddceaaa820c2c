"""The gate with Silero VAD: loud noise is not speech, real speech still is."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from framecast import AudioIn, UserStartedSpeaking
from framecast.engines import SileroVAD
from framecast.models import ModelStore
from framecast.processors import EnergyGate
from framecast.testing import run_processors

pytestmark = pytest.mark.slow

AUDIO = Path(__file__).parents[1] / "data" / "audio"


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD(ModelStore().path("silero-vad"))


def chunks(samples: np.ndarray) -> list[AudioIn]:
    pcm = samples.astype("<i2").tobytes()
    return [AudioIn(pcm=pcm[i : i + 640]) for i in range(0, len(pcm), 640)]


def noise(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.clip(rng.normal(0, 3000, int(seconds * 16000)), -32768, 32767)  # RMS ~3000


@pytest.mark.parametrize(("use_vad", "starts"), [(False, 1), (True, 0)])
async def test_loud_noise_opens_a_turn_only_without_the_vad(
    vad: SileroVAD, use_vad: bool, starts: int
) -> None:
    gate = EnergyGate(vad=vad if use_vad else None)
    out = await run_processors([gate], chunks(noise(2.0)))
    assert len(out.of(UserStartedSpeaking)) == starts


async def test_real_speech_still_opens_a_turn_with_the_vad(vad: SileroVAD) -> None:
    with wave.open(str(AUDIO / "goforward.wav")) as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    out = await run_processors([EnergyGate(vad=vad)], chunks(speech))
    assert len(out.of(UserStartedSpeaking)) >= 1
