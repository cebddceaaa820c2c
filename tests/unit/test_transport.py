"""The /ws/audio codec and the WebSocket transport, without sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from framecast import (
    AudioIn,
    AudioOut,
    BotStartedSpeaking,
    BotStoppedSpeaking,
    Direction,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMText,
    PlaybackInterrupted,
    Processor,
    ReplyEnded,
    ReplyStarted,
    Session,
    TextIn,
    Transcript,
)
from framecast.exceptions import ProtocolError
from framecast.transports.protocol import AudioChunk, Decoder, Hello, UserText, event
from framecast.transports.websocket import WebSocketTransport

# --- codec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"\x00\x01\x02", "bad_audio"),
        (bytes(2048), "too_large"),
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "text"}', "bad_message"),
        ('{"type": "text", "text": "   "}', "bad_message"),
        ('{"type": "hello", "settings": 3}', "bad_message"),
    ],
)
def test_decoder_rejects_bad_input_with_a_code(message: bytes | str, code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        Decoder(max_binary_bytes=1024).decode(message)
    assert caught.value.code == code


def test_decoder_accepts_what_the_protocol_allows() -> None:
    decoder = Decoder()
    assert decoder.decode(bytes(640)) == AudioChunk(bytes(640))
    assert decoder.decode(b"") == AudioChunk(b"")
    assert decoder.decode('{"type": "text", "text": " hi "}') == UserText("hi")
    hello = decoder.decode('{"type": "hello", "client": "x", "voice": "am_adam"}')
    assert hello == Hello(client="x", version="", settings={"voice": "am_adam"})


def test_events_are_compact_json_with_a_type() -> None:
    assert json.loads(event("audio_end", turn=3)) == {"type": "audio_end", "turn": 3}


# --- transport -------------------------------------------------------------------------


class FakeConnection:
    """Feeds scripted client messages; records what the server sends."""

    def __init__(self, incoming: list[bytes | str]) -> None:
        self.incoming = incoming
        self.sent: list[bytes | str] = []
        self.done = asyncio.Event()

    async def send(self, message: str | bytes) -> None:
        self.sent.append(message)

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        for message in self.incoming:
            yield message
            await asyncio.sleep(0)
        await self.done.wait()

    def events(self) -> list[dict[str, object]]:
        return [json.loads(m) for m in self.sent if isinstance(m, str)]

    def kinds(self) -> list[str]:
        return [str(e["type"]) if isinstance(m, str) else "audio" for m, e in self._pairs()]

    def _pairs(self) -> list[tuple[bytes | str, dict[str, object]]]:
        return [(m, json.loads(m) if isinstance(m, str) else {}) for m in self.sent]


class Echo(Processor):
    """Stands in for the bot: answers a typed message with a short spoken reply."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, TextIn):
            t = frame.turn
            for out in (
                ReplyStarted(turn=t),
                LLMText(text="Hi there.", turn=t),
                BotStartedSpeaking(turn=t, sample_rate=24000),
                AudioOut(pcm=bytes(960), text="Hi there.", turn=t),
                BotStoppedSpeaking(turn=t),
                ReplyEnded(turn=t, text="Hi there."),
            ):
                await self.push(out)


async def run_transport(incoming: list[bytes | str], middle: list[Processor]) -> FakeConnection:
    connection = FakeConnection(incoming)
    transport = WebSocketTransport(connection, session_id="s1")
    session = Session([transport.input(), *middle, transport.output()])
    async with session:
        reader = asyncio.ensure_future(transport.run(session))
        for _ in range(len(incoming) * 20 + 50):
            await asyncio.sleep(0)
        connection.done.set()
        await reader
    return connection


async def test_a_typed_turn_becomes_protocol_events_in_order() -> None:
    conn = await run_transport(['{"type": "hello"}', '{"type": "text", "text": "hello"}'], [Echo()])
    assert conn.kinds() == ["ready", "reply", "audio_start", "audio", "audio_end", "metrics"]
    ready, reply, start, end, metrics = conn.events()
    assert ready == {"type": "ready", "sample_rate_in": 16000, "sample_rate_out": 24000,
                     "session": "s1"}  # fmt: skip
    assert (reply["turn"], reply["text"], start["sample_rate"], end["turn"]) == (
        1,
        "Hi there.",
        24000,
        1,
    )
    assert metrics["turn"] == 1 and metrics["interrupted"] is False
    assert metrics["user_speech_end_ms"] == 0.0 and "first_audio_out_ms" in metrics


async def test_bad_input_gets_an_error_event_and_the_session_goes_on() -> None:
    conn = await run_transport(
        [b"\x01\x02\x03", "nope", '{"type": "text", "text": "hello"}'], [Echo()]
    )
    errors = [e for e in conn.events() if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["bad_audio", "bad_json"]
    assert "audio_end" in conn.kinds()


async def test_a_hello_after_an_audio_flood_is_still_answered() -> None:
    flood: list[bytes | str] = [b"\x00\x00"] * 3000
    conn = await run_transport([*flood, '{"type": "hello"}'], [])
    kinds = [e["type"] for e in conn.events()]
    assert kinds.count("error") >= 1 and kinds[-1] == "ready"
    assert {e["code"] for e in conn.events() if e["type"] == "error"} == {"rate_limited"}


class Failing(Processor):
    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, TextIn):
            raise RuntimeError("stage exploded")
        await self.push(frame, direction)


async def test_a_failing_stage_is_reported_to_the_client() -> None:
    conn = await run_transport(['{"type": "text", "text": "hello"}'], [Failing(name="llm")])
    (error,) = [e for e in conn.events() if e["type"] == "error"]
    assert error["stage"] == "llm" and error["code"] == "internal"
    assert "stage exploded" in str(error["message"])


class Speaker(Processor):
    """Starts a reply for each typed message; sends audio only when asked to."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, TextIn):
            t = frame.turn
            await self.push(ReplyStarted(turn=t))
            await self.push(BotStartedSpeaking(turn=t, sample_rate=24000))
            await self.push(AudioOut(pcm=bytes(48000), text="One two three four.", turn=t))

    async def late_audio(self, turn: int) -> None:
        await self.push(AudioOut(pcm=bytes(960), turn=turn))


async def test_barge_in_cancels_audio_reports_what_was_heard_and_gates_late_audio() -> None:
    connection = FakeConnection([])
    transport = WebSocketTransport(connection, session_id="s1")
    speaker = Speaker()
    heard: list[Frame] = []

    async def on_up(frame: Frame) -> None:
        heard.append(frame)

    session = Session([transport.input(), speaker, transport.output()], on_upstream=on_up)
    async with session:
        await session.push(TextIn(text="talk", turn=await session.interrupt()))
        turn = await session.interrupt()
        await session.push(InterruptionFrame(turn=turn))
        await speaker.late_audio(1)  # a stage that did not notice: the output's gate drops it
    kinds = connection.kinds()
    assert kinds == ["audio_start", "audio", "audio_cancel", "metrics"]
    cancel = connection.events()[1]
    assert cancel == {"type": "audio_cancel", "turn": 1}
    assert connection.events()[2]["interrupted"] is True
    (cut,) = [f for f in heard if isinstance(f, PlaybackInterrupted)]
    assert cut.reply_turn == 1 and cut.turn == 2
    assert cut.heard_text.split()[0] == "One"  # at least the first word was playing


async def test_mic_audio_and_typed_text_enter_with_the_current_turn() -> None:
    seen: list[Frame] = []

    class Spy(Processor):
        async def process(self, frame: Frame, direction: Direction) -> None:
            if isinstance(frame, AudioIn | TextIn | InterruptionFrame):
                seen.append(frame)
            await self.push(frame, direction)

    await run_transport([bytes(640), '{"type": "text", "text": "hi"}', bytes(640)], [Spy()])
    assert [(type(f).__name__, f.turn) for f in seen] == [
        ("AudioIn", 0),
        ("InterruptionFrame", 1),
        ("TextIn", 1),
        ("AudioIn", 1),
    ]


async def test_error_frames_from_upstream_carry_stage_and_retryable() -> None:
    conn = FakeConnection([])
    transport = WebSocketTransport(conn, session_id="s")
    session = Session([transport.input(), Processor(), transport.output()])
    async with session:
        await session.push(
            ErrorFrame(message="llm down", code="remote_service", processor="llm", retryable=True),
            Direction.UP,
        )
    assert conn.events() == [{"type": "error", "message": "llm down", "code": "remote_service",
                              "stage": "llm", "turn": 0, "retryable": True}]  # fmt: skip


class Transcriber(Processor):
    async def process(self, frame: Frame, direction: Direction) -> None:
        await self.push(frame, direction)
        if isinstance(frame, TextIn):
            await self.push(Transcript(text="", final=True, turn=frame.turn))  # only a noise
            await self.push(Transcript(text="hi", final=False, turn=frame.turn))


async def test_empty_transcripts_are_not_sent_to_the_client() -> None:
    conn = await run_transport(['{"type": "text", "text": "x"}'], [Transcriber()])
    assert [(e["text"], e["final"]) for e in conn.events() if e["type"] == "transcript"] == [
        ("hi", False)
    ]
