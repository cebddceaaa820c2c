"""The real voice bot under bad input: malformed messages, floods, vanishing clients, the cap.

Every bad input is followed by a normal turn (on the same connection, or on a new one
when the server is expected to have dropped the old one) that must still work.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from client import (
    MAX_MESSAGE_BYTES,
    MAX_SESSIONS,
    Bot,
    BotClient,
    load_clip,
    spoken_turn,
    typed_turn,
    word_error_rate,
)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

pytestmark = pytest.mark.slow

SHORT_REQUEST = "Name one colour of the rainbow, in one short sentence."
LONG_REQUEST = "Tell me a long story about a dragon, in ten sentences."
FLOOD_FRAMES = 20_000


def test_malformed_audio_is_refused_and_speech_still_works(bot: Bot) -> None:
    clip = load_clip("librivox_0930.wav")  # a misaligned sample would garble all of it

    async def scenario() -> tuple[BotClient, int]:
        async with BotClient(bot.ws_url) as client:
            await client.ws.send(b"\x01" * 321)  # half a sample too many: would shift every sample
            error = await client.wait_event("error", "bad_audio for an odd-length message", 10)
            assert error["code"] == "bad_audio", error
            before = len(client.log)
            await client.ws.send(b"\x00\x10" * (MAX_MESSAGE_BYTES // 2 + 1))
            error = await client.wait_event("error", "too_large", 10, start=before)
            assert error["code"] == "too_large", error
            turn = await spoken_turn(client, clip)
            return client, turn

    client, turn = asyncio.run(scenario())
    (final,) = [t for t in client.events("transcript", turn=turn) if t["final"]]
    assert word_error_rate(clip.transcript, final["text"]) <= 0.3, final
    assert [e["code"] for e in client.events("error")] == ["bad_audio", "too_large"]


def test_a_message_far_over_the_limit_closes_only_that_connection(bot: Bot) -> None:
    async def scenario() -> tuple[int | None, BotClient]:
        async with BotClient(bot.ws_url) as doomed:
            await doomed.ws.send(bytes(4 * MAX_MESSAGE_BYTES + 2))  # over the frame size cap
            async with asyncio.timeout(10):
                await doomed.closed.wait()
        async with BotClient(bot.ws_url) as client:
            await typed_turn(client, SHORT_REQUEST)
        return doomed.close_code, client

    close_code, client = asyncio.run(scenario())
    assert close_code == 1009, close_code  # "message too big"
    assert not client.events("error"), client.events("error")


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ('{"type": "text", "text": "unterminated', "bad_json"),
        ('{"type": "launch_rockets"}', "unknown_type"),
        ('["type", "text"]', "bad_message"),
    ],
    ids=["invalid-json", "unknown-type", "not-an-object"],
)
def test_malformed_text_gets_an_error_event_and_the_session_goes_on(
    bot: Bot, message: str, code: str
) -> None:
    async def scenario() -> BotClient:
        async with BotClient(bot.ws_url) as client:
            await client.ws.send(message)
            error = await client.wait_event("error", f"error {code}", 10)
            assert error["code"] == code, error
            assert isinstance(error["message"], str), error
            assert error["message"], error
            await typed_turn(client, SHORT_REQUEST)
            return client

    client = asyncio.run(scenario())
    assert [e["code"] for e in client.events("error")] == [code]


def test_a_flood_of_tiny_frames_does_not_break_this_or_other_sessions(bot: Bot) -> None:
    speech = load_clip("librivox_0930.wav")
    after_flood = load_clip("cards_003.wav")

    async def scenario() -> tuple[BotClient, int, BotClient, int]:
        async with BotClient(bot.ws_url) as flooder, BotClient(bot.ws_url) as bystander:
            listening = asyncio.create_task(spoken_turn(bystander, speech))
            # Flood while the bystander's turn is being heard (its first transcript is out).
            await bystander.wait_for(lambda: bystander.events("transcript"), "a transcript", 30)
            for _ in range(FLOOD_FRAMES):
                await flooder.ws.send(b"\x00\x00")
            heard = await listening
            flooder_turn = await spoken_turn(flooder, after_flood)  # the flooder is still served
            return flooder, flooder_turn, bystander, heard

    flooder, flooder_turn, bystander, heard = asyncio.run(scenario())
    assert not bystander.events("error"), bystander.events("error")
    (final,) = [t for t in bystander.events("transcript", turn=heard) if t["final"]]
    assert word_error_rate(speech.transcript, final["text"]) <= 0.3, final
    codes = {e["code"] for e in flooder.events("error")}
    assert codes <= {"rate_limited"}, flooder.events("error")
    (final,) = [t for t in flooder.events("transcript", turn=flooder_turn) if t["final"]]
    assert word_error_rate(after_flood.transcript, final["text"]) <= 0.5, final


def test_a_client_vanishing_mid_reply_leaks_nothing(bot: Bot) -> None:
    baseline = bot.sessions_gauge()

    async def scenario() -> None:
        vanishing = await BotClient(bot.ws_url).open()
        await vanishing.send_text(LONG_REQUEST)
        start = await vanishing.wait_event("audio_start", "the story's audio", 60)
        await vanishing.wait_for(
            lambda: vanishing.audio_of_turn(int(start["turn"])), "the first audio bytes", 30
        )
        assert vanishing.index_of("audio_end") is None, "the reply ended before the client left"
        assert await asyncio.to_thread(bot.llm_busy_slots), "the story is no longer generated"
        vanishing.abort()  # no close frame, no FIN handshake: the TCP connection just dies
        async with asyncio.timeout(10):
            await vanishing.closed.wait()
        # Nobody listens any more: the LLM stops generating the story (it had ~200 tokens
        # to go, i.e. seconds) and frees the CPU for other sessions.
        await bot.eventually(lambda: not bot.llm_busy_slots(), "LLM slots still busy", 2.0)

        async with BotClient(bot.ws_url) as survivor:
            await typed_turn(survivor, SHORT_REQUEST)
            status, health = await asyncio.to_thread(bot.health)
            assert status == 200, health
            assert health["status"] == "ok", health
            await bot.eventually(
                lambda: bot.sessions_gauge() == baseline + 1, "sessions gauge with one client"
            )
        await bot.eventually(lambda: bot.sessions_gauge() == baseline, "sessions gauge at the end")

    asyncio.run(scenario())


def test_the_session_cap_refuses_a_fourth_connection_until_one_closes(bot: Bot) -> None:
    async def scenario() -> None:
        clients = [BotClient(bot.ws_url) for _ in range(MAX_SESSIONS)]
        try:
            for client in clients:
                await client.open()
                await client.send_json({"type": "hello", "client": "e2e"})
                await client.wait_event("ready", "ready", 10)  # its session is running
            with pytest.raises(InvalidStatus) as refused:
                async with connect(bot.ws_url, open_timeout=10):
                    pass
            assert refused.value.response.status_code == 503
            body = json.loads(refused.value.response.body or b"{}")
            assert body.get("code") == "too_many_sessions", body
            await clients.pop().close()
            await bot.eventually(
                lambda: bot.health()[1]["sessions"] == MAX_SESSIONS - 1, "a free session"
            )
            async with BotClient(bot.ws_url) as fourth:
                await typed_turn(fourth, SHORT_REQUEST)
        finally:
            for client in clients:
                await client.close()

    asyncio.run(scenario())
