"""The real voice bot over ``/ws/audio``: a spoken turn, barge-in, typed turns and hello.

Speech is streamed in real time from real recordings; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import numpy as np
import pytest
from client import (
    Bot,
    BotClient,
    after_cancel_violations,
    assert_spoken_reply,
    load_clip,
    normalize_words,
    resample_24k_to_16k,
    spoken_turn,
    typed_turn,
    word_error_rate,
)

pytestmark = pytest.mark.slow

LONG_REQUEST = "Tell me a long story about a dragon, in ten sentences."
SHORT_REQUEST = "What is the capital of France? Answer in one short sentence."
#: Median F0 between Kokoro's female default (af_heart, ~190 Hz) and am_michael (~125 Hz).
MALE_FEMALE_F0_HZ = 155.0


def median_f0(pcm: bytes, rate: int = 24000) -> float:
    """Median pitch of the voiced 40 ms frames (autocorrelation peak in 70-400 Hz)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frame = int(0.04 * rate)
    low, high = rate // 400, rate // 70
    pitches = []
    for offset in range(0, len(samples) - frame, frame):
        segment = samples[offset : offset + frame] - samples[offset : offset + frame].mean()
        if np.sqrt(np.mean(segment**2)) < 1000:
            continue
        autocorrelation = np.correlate(segment, segment, "full")[frame - 1 :]
        lag = low + int(np.argmax(autocorrelation[low:high]))
        if autocorrelation[lag] > 0.5 * autocorrelation[0]:
            pitches.append(rate / lag)
    assert len(pitches) >= 5, f"only {len(pitches)} voiced frames in {len(pcm)} B of reply audio"
    return float(np.median(pitches))


def test_spoken_turn_gets_transcripts_reply_audio_and_metrics(bot: Bot, whisper: Any) -> None:
    clip = load_clip("librivox_0930.wav")  # the longer clip: partials while it is spoken

    async def scenario() -> tuple[BotClient, int, float]:
        async with BotClient(bot.ws_url) as client:
            began = time.monotonic()
            turn = await spoken_turn(client, clip)
            return client, turn, began + clip.speech_end_s

    client, turn, speech_end = asyncio.run(scenario())

    transcripts = client.events("transcript", turn=turn)
    finals = [t for t in transcripts if t["final"]]
    assert len(finals) == 1, transcripts
    partials_before = [
        t for t in transcripts[: transcripts.index(finals[0])] if not t["final"] and t["text"]
    ]
    assert partials_before, f"no partial transcript before the final: {transcripts}"
    wer = word_error_rate(clip.transcript, finals[0]["text"])
    assert wer <= 0.3, f"final {finals[0]['text']!r} vs {clip.transcript!r}: WER {wer:.2f}"

    (emotion,) = client.events("emotion", turn=turn)
    assert isinstance(emotion["label"], str) and emotion["label"], emotion
    assert 0.0 <= emotion["score"] <= 1.0, emotion

    audio = assert_spoken_reply(client, turn)
    start_index = client.index_of("audio_start", turn=turn)
    end_index = client.index_of("audio_end", turn=turn)
    assert start_index is not None and end_index is not None
    assert client.log[start_index + 1].audio is not None, "audio_start not followed by audio"

    (metrics,) = client.events("metrics", turn=turn)
    stages = {k: v for k, v in metrics.items() if k.endswith("_ms")}
    assert len(stages) >= 4, metrics
    for name, value in stages.items():
        assert isinstance(value, int | float) and not isinstance(value, bool), (name, value)
        assert math.isfinite(value) and value >= 0, (name, value)
    # The server's clock and ours agree on when the first reply audio left (ms, not s).
    seen_ms = (client.log[start_index].at - speech_end) * 1000
    assert abs(metrics["first_audio_out_ms"] - seen_ms) < 1000, (metrics, seen_ms)

    # The reply audio is speech, and says what the reply text says.
    reply_text = "".join(e["text"] for e in client.events("reply", turn=turn))
    segments, _ = whisper.transcribe(
        resample_24k_to_16k(audio), language="en", beam_size=1, temperature=0.0
    )
    heard = " ".join(segment.text for segment in segments).strip()
    assert len(normalize_words(heard)) >= 2, f"reply audio heard as {heard!r}"
    wer = word_error_rate(reply_text, heard)
    assert wer <= 0.5, f"reply {reply_text!r} heard as {heard!r}: WER {wer:.2f}"


def test_barge_in_cancels_the_reply_and_answers_the_new_utterance(bot: Bot) -> None:
    interruption = load_clip("cards_003.wav")

    async def scenario() -> tuple[BotClient, int, int]:
        async with BotClient(bot.ws_url) as client:
            await client.send_text(LONG_REQUEST)
            first = await client.wait_event("audio_start", "the story's audio_start", 60)
            story = int(first["turn"])
            await client.wait_for(
                lambda: client.audio_of_turn(story), "the story's first audio bytes", 30
            )
            assert client.index_of("audio_end", turn=story) is None, "story too short to interrupt"
            barge_at = len(client.log)
            new_turn = await spoken_turn(client, interruption)
            assert client.index_of("audio_cancel", turn=story, start=barge_at) is not None
            return client, story, new_turn

    client, story, new_turn = asyncio.run(scenario())

    violations = after_cancel_violations(client, story)
    assert not violations, f"after audio_cancel of turn {story}: {violations}{client.describe(60)}"
    assert new_turn > story
    final = client.events("transcript", turn=new_turn)[-1]
    assert final["final"] and word_error_rate(interruption.transcript, final["text"]) <= 0.5, final
    assert_spoken_reply(client, new_turn)
    metrics = {e["turn"]: e for e in client.events("metrics")}
    assert metrics[story].get("interrupted") is True, metrics
    assert metrics[new_turn].get("interrupted") is False, metrics


def test_typed_turns_and_hello_voice_settings(bot: Bot) -> None:
    async def scenario() -> BotClient:
        async with BotClient(bot.ws_url) as client:
            await client.send_json({"type": "hello", "settings": {"voice": "no_such_voice"}})
            error = await client.wait_event("error", "an error for an unknown voice", 10)
            assert "no_such_voice" in error["message"], error
            first_ready = await client.wait_event("ready", "ready after the refused hello", 10)
            default_turn = await typed_turn(client, SHORT_REQUEST)  # the connection still works

            before = len(client.log)
            await client.send_json({"type": "hello", "settings": {"voice": "am_michael"}})
            ready = await client.wait_event("ready", "ready for am_michael", 10, start=before)
            assert ready == first_ready, (ready, first_ready)  # nothing else changed
            michael_turn = await typed_turn(client, SHORT_REQUEST)
            assert not client.events("error")[1:], client.events("error")
            assert michael_turn > default_turn
            assert median_f0(client.audio_of_turn(default_turn)) > MALE_FEMALE_F0_HZ
            assert median_f0(client.audio_of_turn(michael_turn)) < MALE_FEMALE_F0_HZ
            return client

    client = asyncio.run(scenario())
    ready = client.events("ready")[0]
    assert ready["sample_rate_in"] == 16000 and ready["sample_rate_out"] == 24000, ready
    assert isinstance(ready["session"], str) and ready["session"], ready
