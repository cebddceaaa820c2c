"""EnergyEndpointer and rms_int16 on synthetic PCM with exact expected events."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from framecast.exceptions import ConfigError, ProtocolError
from framecast.logic.endpointing import (
    EndpointEvent,
    EnergyEndpointer,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    rms_int16,
)

RATE = 16_000
FRAME = 320  # 20 ms


def samples(ms: int) -> int:
    return ms * RATE // 1000


def tone(ms: int, amplitude: float = 3000.0) -> npt.NDArray[np.int16]:
    t = np.arange(samples(ms)) / RATE
    return (amplitude * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16)


def silence(ms: int) -> npt.NDArray[np.int16]:
    return np.zeros(samples(ms), dtype=np.int16)


def noise(ms: int, rms: float, seed: int = 0) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.0, rms, samples(ms)), -32768, 32767).astype(np.int16)


def audio(*parts: npt.NDArray[np.int16]) -> bytes:
    return np.concatenate(parts).astype("<i2").tobytes()


def run(pcm: bytes, chunk_samples: int = FRAME, **options: float) -> list[EndpointEvent]:
    """Feed ``pcm`` in fixed chunks, with ``now`` the time of each chunk's last sample."""
    endpointer = EnergyEndpointer(**options)  # type: ignore[arg-type]
    events: list[EndpointEvent] = []
    step = 2 * chunk_samples
    for offset in range(0, len(pcm), step):
        chunk = pcm[offset : offset + step]
        events += endpointer.feed(chunk, now=(offset + len(chunk)) / 2 / RATE)
    return events


def started(sample: int, onset: int) -> SpeechStarted:
    return SpeechStarted(at=sample / RATE, sample=sample, onset=onset)


def paused(sample: int, silence_ms: float) -> SpeechPaused:
    return SpeechPaused(at=sample / RATE, sample=sample, silence_ms=silence_ms)


def resumed(sample: int) -> SpeechResumed:
    return SpeechResumed(at=sample / RATE, sample=sample)


def stopped(sample: int, silence_ms: float) -> SpeechStopped:
    return SpeechStopped(at=sample / RATE, sample=sample, silence_ms=silence_ms)


# --- rms_int16 -------------------------------------------------------------------------


def test_rms_of_bytes_and_arrays() -> None:
    constant = np.full(160, -1000, dtype=np.int16)
    assert rms_int16(constant) == 1000.0
    assert rms_int16(constant.astype("<i2").tobytes()) == 1000.0
    assert rms_int16(tone(100, 3000.0)) == pytest.approx(3000.0 / np.sqrt(2), rel=1e-3)


def test_rms_does_not_overflow_at_full_scale() -> None:
    assert rms_int16(np.full(4, -32768, dtype=np.int16)) == 32768.0


def test_rms_of_nothing_is_zero() -> None:
    assert rms_int16(b"") == 0.0


def test_rms_rejects_a_torn_sample() -> None:
    with pytest.raises(ProtocolError):
        rms_int16(b"\x00\x01\x02")


# --- events ----------------------------------------------------------------------------


def test_an_utterance_starts_pauses_and_stops_at_exact_frames() -> None:
    # 500 ms quiet, 600 ms tone (samples 8000..17600), then 1200 ms quiet.
    events = run(audio(silence(500), tone(600), silence(1200)))
    assert events == [
        started(8000 + 3 * FRAME, onset=8000),  # the third voiced frame: 60 ms in
        paused(17600 + samples(200), silence_ms=200.0),
        stopped(17600 + samples(1000), silence_ms=1000.0),
    ]


@pytest.mark.parametrize("clicks", [[0], [0, 1], [0, 3], [0, 2]])
def test_a_click_does_not_start_speech(clicks: list[int]) -> None:
    """Fewer than 60 ms voiced within 100 ms is a click, not speech."""
    frames = [silence(20)] * 10
    for index in clicks:
        frames[2 + index] = tone(20)
    assert run(audio(*frames)) == []


def test_three_voiced_frames_within_the_window_start_speech() -> None:
    voiced, quiet = tone(20), silence(20)
    events = run(audio(quiet, voiced, quiet, voiced, quiet, voiced, quiet))
    assert events == [started(6 * FRAME, onset=FRAME)]


def test_a_dip_inside_speech_produces_no_event() -> None:
    events = run(audio(tone(300), silence(180), tone(300), silence(1200)))
    speech_end = samples(780)
    assert events == [
        started(3 * FRAME, onset=0),
        paused(speech_end + samples(200), silence_ms=200.0),
        stopped(speech_end + samples(1000), silence_ms=1000.0),
    ]


def test_speech_after_a_pause_resumes() -> None:
    events = run(audio(tone(300), silence(400), tone(300), silence(1200)))
    assert events == [
        started(3 * FRAME, onset=0),
        paused(samples(500), silence_ms=200.0),
        resumed(samples(700) + 3 * FRAME),
        paused(samples(1200), silence_ms=200.0),
        stopped(samples(2000), silence_ms=1000.0),
    ]


def test_a_click_during_a_pause_neither_resumes_nor_restarts_the_silence_clock() -> None:
    events = run(audio(tone(300), silence(400), tone(20), silence(1000)))
    assert events == [
        started(3 * FRAME, onset=0),
        paused(samples(500), silence_ms=200.0),
        stopped(samples(1300), silence_ms=1000.0),
    ]


def test_a_click_where_the_pause_would_fire_delays_it_by_one_frame() -> None:
    """A voiced frame may be the next word's onset, so the pause waits for a quiet one."""
    events = run(audio(tone(300), silence(180), tone(20), silence(1200)))
    assert events == [
        started(3 * FRAME, onset=0),
        paused(samples(520), silence_ms=220.0),
        stopped(samples(1300), silence_ms=1000.0),
    ]


def test_the_threshold_is_strict() -> None:
    def level(amplitude: int) -> bytes:
        return audio(np.full(samples(200), amplitude, dtype=np.int16))

    assert run(level(600)) == []
    assert run(level(601)) == [started(3 * FRAME, onset=0)]


def test_noise_below_the_threshold_is_quiet_and_above_it_is_speech() -> None:
    assert run(audio(noise(1000, rms=300.0))) == []
    assert run(audio(noise(1000, rms=1500.0)))[0] == started(3 * FRAME, onset=0)


def test_settings_change_the_timings() -> None:
    events = run(
        audio(silence(100), tone(300), silence(700)),
        start_ms=40,
        pause_ms=100,
        hangover_ms=500,
        threshold=100.0,
    )
    end = samples(400)
    assert events == [
        started(samples(100) + 2 * FRAME, onset=samples(100)),
        paused(end + samples(100), silence_ms=100.0),
        stopped(end + samples(500), silence_ms=500.0),
    ]


def test_speaking_follows_the_events() -> None:
    endpointer = EnergyEndpointer()
    assert not endpointer.speaking
    endpointer.feed(audio(tone(100)), now=0.1)
    assert endpointer.speaking
    endpointer.feed(audio(silence(300)), now=0.4)
    assert endpointer.speaking  # paused is still inside the utterance
    endpointer.feed(audio(silence(800)), now=1.2)
    assert not endpointer.speaking


# --- framing and time ------------------------------------------------------------------

SCENE = audio(
    silence(230), tone(20), silence(50), tone(410), noise(130, 100.0), tone(250),
    silence(390), tone(90), silence(1100), noise(300, 2000.0, seed=1), silence(1100),
)  # fmt: skip


def test_arbitrary_chunk_sizes_give_the_same_events_as_20_ms_chunks() -> None:
    reference = run(SCENE)
    assert [type(event) for event in reference] == [
        SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused, SpeechStopped,
        SpeechStarted, SpeechPaused, SpeechStopped,
    ]  # fmt: skip
    rng = random.Random(7)
    for _ in range(20):
        endpointer = EnergyEndpointer()
        events: list[EndpointEvent] = []
        offset = 0
        while offset < len(SCENE):
            size = 2 * rng.choice([0, 1, 7, 159, 320, 321, 1600, rng.randrange(1, 5000)])
            chunk = SCENE[offset : offset + size]
            offset += len(chunk)
            events += endpointer.feed(chunk, now=offset / 2 / RATE)
        assert [replace(e, at=0.0) for e in events] == [replace(e, at=0.0) for e in reference]
        assert [e.at for e in events] == pytest.approx([e.at for e in reference], abs=1e-9)


def test_events_inside_one_big_chunk_are_dated_back_from_now() -> None:
    pcm = audio(silence(500), tone(600), silence(1200))
    start_time = 1000.0
    events = EnergyEndpointer().feed(pcm, now=start_time + 2.3)
    assert [e.sample for e in events] == [8960, 20800, 33600]
    assert [e.at for e in events] == pytest.approx([1000.56, 1001.3, 1002.1])


def test_a_partial_frame_waits_for_the_rest() -> None:
    endpointer = EnergyEndpointer()
    pcm = audio(tone(60))
    assert endpointer.feed(pcm[:-2], now=0.0599) == []  # one sample short of 3 frames
    assert endpointer.feed(pcm[-2:], now=0.06) == [started(3 * FRAME, onset=0)]


def test_reset_restarts_the_stream_at_sample_zero() -> None:
    endpointer = EnergyEndpointer()
    endpointer.feed(audio(silence(30), tone(100)), now=0.13)
    endpointer.reset()
    assert not endpointer.speaking
    assert endpointer.feed(audio(tone(60)), now=0.06) == [started(3 * FRAME, onset=0)]


def test_feed_rejects_a_torn_sample() -> None:
    with pytest.raises(ProtocolError):
        EnergyEndpointer().feed(b"\x00\x00\x00", now=0.0)


@pytest.mark.parametrize(
    "options",
    [
        {"frame_ms": 1, "sample_rate": 22050},
        {"frame_ms": 0},
        {"start_ms": 120, "start_window_ms": 100},
        {"start_ms": 0},
        {"pause_ms": 1000, "hangover_ms": 1000},
        {"pause_ms": 0},
    ],
)
def test_bad_settings_raise(options: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        EnergyEndpointer(**options)
