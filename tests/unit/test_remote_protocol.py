"""Wire formats of the STT/TTS services and the remote TTS client, without sockets."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import httpx2
import pytest

from framecast.engines.remote import (
    END_OF_STREAM,
    FrameDecoder,
    RemoteSTTEngine,
    RemoteTTSEngine,
    decode_frames,
    encode_frame,
    parse_stt_reply,
    transcribe_message,
)
from framecast.engines.whisper import Segment
from framecast.exceptions import ConfigError, ProtocolError, RemoteServiceError
from framecast.services.stt_service import (
    Rejection,
    RequestAssembler,
    TranscribeJob,
    error_message,
    result_message,
)
from framecast.services.tts_service import parse_head, parse_speech_request

PAYLOADS = [b"\x01\x02", bytes(range(256)) * 3, b"\xff" * 5, b"\x00\x00"]


def _stream(payloads: list[bytes]) -> bytes:
    return b"".join(map(encode_frame, payloads)) + END_OF_STREAM


# --- length-prefixed framing --------------------------------------------------------------


def test_frame_is_little_endian_length_then_payload() -> None:
    assert encode_frame(b"abc") == b"\x03\x00\x00\x00abc"
    assert encode_frame(b"x" * 258)[:4] == b"\x02\x01\x00\x00"
    assert END_OF_STREAM == b"\x00\x00\x00\x00"


def test_empty_payload_cannot_be_framed_since_zero_means_end() -> None:
    with pytest.raises(ValueError, match="end of the stream"):
        encode_frame(b"")


def test_whole_stream_round_trips() -> None:
    assert decode_frames(_stream(PAYLOADS)) == PAYLOADS
    assert decode_frames(END_OF_STREAM) == []


@pytest.mark.parametrize("seed", range(5))
def test_decoder_returns_each_payload_once_whatever_the_splits(seed: int) -> None:
    stream = _stream(PAYLOADS)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(stream)), 12))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    decoder = FrameDecoder()

    out = [payload for piece in pieces for payload in decoder.feed(piece)]

    assert out == PAYLOADS
    assert decoder.ended
    decoder.finish()


def test_decoder_fed_byte_by_byte_completes_frames_at_their_last_byte() -> None:
    stream = encode_frame(b"ab") + encode_frame(b"cdef") + END_OF_STREAM
    decoder = FrameDecoder()

    results = [decoder.feed(stream[i : i + 1]) for i in range(len(stream))]

    completed = [(i, r) for i, r in enumerate(results) if r]
    assert completed == [(5, [b"ab"]), (13, [b"cdef"])]
    assert decoder.ended and decoder.buffered == 0


def test_stream_without_end_marker_is_truncated() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(b"abcd") + encode_frame(b"efgh")[:5]) == [b"abcd"]

    with pytest.raises(ProtocolError, match="5 bytes pending") as caught:
        decoder.finish()
    assert caught.value.code == "truncated"
    with pytest.raises(ProtocolError, match="before its end marker"):
        decode_frames(encode_frame(b"ab"))


def test_oversized_length_is_rejected_before_its_payload_is_buffered() -> None:
    decoder = FrameDecoder(max_frame_bytes=8)
    assert decoder.feed(encode_frame(b"12345678")) == [b"12345678"]

    with pytest.raises(ProtocolError, match="9 bytes exceeds the limit of 8") as caught:
        decoder.feed(b"\x09\x00\x00\x00")
    assert caught.value.code == "bad_frame"


def test_data_after_the_end_marker_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="after the end"):
        decode_frames(END_OF_STREAM + b"\x01")
    decoder = FrameDecoder()
    decoder.feed(END_OF_STREAM)
    assert decoder.feed(b"") == []
    with pytest.raises(ProtocolError, match="after the end"):
        decoder.feed(b"\x02\x00\x00\x00ab")


# --- STT messages ---------------------------------------------------------------------------


def test_request_from_the_client_becomes_a_job_on_the_service() -> None:
    assembler = RequestAssembler(max_audio_bytes=1000)

    assert assembler.feed(transcribe_message(7, "seven of")) == []
    assert assembler.feed(b"\x01\x00" * 4) == [TranscribeJob(7, "seven of", b"\x01\x00" * 4)]
    assert assembler.feed(transcribe_message(8, "")) == []
    assert assembler.feed(b"") == [TranscribeJob(8, None, b"")]


def test_result_from_the_service_becomes_a_transcription_on_the_client() -> None:
    segments = [Segment(0.0, 1.25, "Seven of"), Segment(1.25, 1.5, "clubs.")]
    message = result_message(3, "Seven of clubs.", segments, 81.26)

    result = parse_stt_reply(message, 3)

    assert result.text == "Seven of clubs."
    assert result.segments == tuple(segments)
    assert result.decode_ms == 81.3


def test_error_answer_keeps_code_and_retryable() -> None:
    message = error_message(4, "audio over the 30 s limit", "too_large", retryable=False)

    with pytest.raises(RemoteServiceError, match="30 s limit") as caught:
        parse_stt_reply(message, 4)
    assert caught.value.code == "too_large"
    assert not caught.value.retryable
    assert caught.value.service == "stt"
    with pytest.raises(RemoteServiceError) as busy:
        parse_stt_reply(error_message(5, "busy", "engine", retryable=True), 5)
    assert busy.value.retryable


@pytest.mark.parametrize(
    "reply",
    [
        result_message(2, "other request", [], 1.0),
        b"\x00\x01",
        "not json",
        json.dumps({"type": "partial", "id": 1}),
        json.dumps({"type": "result", "id": 1, "text": "x"}),
    ],
)
def test_malformed_or_out_of_step_replies_are_protocol_errors(reply: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_stt_reply(reply, 1)


def test_bad_messages_are_rejected_and_the_next_request_still_works() -> None:
    assembler = RequestAssembler(max_audio_bytes=8)

    (bad_json,) = assembler.feed("{nope")
    assert isinstance(bad_json, Rejection)
    assert (bad_json.id, bad_json.code) == (None, "bad_input")
    assert bad_json.message.startswith("not JSON")
    assert assembler.feed(b"\x00\x00") == [
        Rejection(None, "audio without a transcribe message before it", "bad_input")
    ]
    assembler.feed(transcribe_message(1, None))
    assert assembler.feed(b"\x00" * 3) == [
        Rejection(1, "PCM16 needs an even byte count, got 3", "bad_input")
    ]
    assembler.feed(transcribe_message(2, None))
    (too_large,) = assembler.feed(b"\x00" * 10)
    assert isinstance(too_large, Rejection) and (too_large.id, too_large.code) == (2, "too_large")
    assembler.feed(transcribe_message(3, None))
    assert assembler.feed(transcribe_message(4, None)) == [
        Rejection(3, "expected audio after the transcribe message", "bad_input")
    ]
    assert assembler.feed(b"\x00\x00") == [TranscribeJob(4, None, b"\x00\x00")]


@pytest.mark.parametrize(
    ("header", "expected_id"),
    [
        ({"type": "hello", "id": 5}, 5),
        ({"type": "transcribe", "id": [1]}, None),
        ({"type": "transcribe", "id": True}, None),
        ({"type": "transcribe", "id": "a", "prompt": 3}, "a"),
    ],
)
def test_invalid_headers_are_answered_with_their_id_when_usable(
    header: dict[str, object], expected_id: object
) -> None:
    (rejection,) = RequestAssembler(8).feed(json.dumps(header))

    assert isinstance(rejection, Rejection)
    assert rejection.id == expected_id
    assert rejection.code == "bad_input"


# --- TTS requests -------------------------------------------------------------------------


VOICES = ("af_heart", "am_michael")


def _speech(body: object) -> object:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_speech_request(raw, voices=VOICES, default_voice="af_heart", max_chars=20)


def test_speech_request_defaults_voice_and_speed() -> None:
    request = _speech({"text": "Hi there."})

    assert request == parse_speech_request(
        b'{"text": "Hi there.", "voice": "af_heart", "speed": 1}',
        voices=VOICES,
        default_voice="am_michael",
        max_chars=20,
    )
    assert _speech({"text": "Hi", "voice": "am_michael", "speed": 1.5}) == type(request)(
        "Hi", "am_michael", 1.5
    )


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"{", "not JSON"),
        ([1], "JSON object"),
        ({"text": "  "}, "non-empty"),
        ({"voice": "af_heart"}, "non-empty"),
        ({"text": "x" * 21}, "limit is 20"),
        ({"text": "hi", "voice": "zz_nobody"}, "available: af_heart, am_michael"),
        ({"text": "hi", "speed": 3}, "speed"),
        ({"text": "hi", "speed": True}, "speed"),
        ({"text": "hi", "speed": "fast"}, "speed"),
    ],
)
def test_bad_speech_requests_say_what_is_wrong(body: object, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        _speech(body)


def test_request_head_is_parsed_with_lower_case_names() -> None:
    head = (
        b"POST /tts/stream?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
        b"X-Tag: one\r\nx-tag: two\r\n\r\n"
    )

    request = parse_head(head)

    assert (request.method, request.path) == ("POST", "/tts/stream")
    assert request.headers == {"host": "a", "content-length": "12", "x-tag": "one,two"}


@pytest.mark.parametrize(
    "head",
    [
        b"GET /\r\n\r\n",
        b"GET / SPDY/3\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    ],  # fmt: skip
)
def test_malformed_heads_are_protocol_errors(head: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_head(head)


# --- clients: URLs and the TTS stream over a mock transport ----------------------------------


def test_service_urls_get_the_default_path() -> None:
    assert RemoteSTTEngine("ws://stt-box:7003").url == "ws://stt-box:7003/ws/stt"
    assert RemoteSTTEngine("wss://h/custom/path").url == "wss://h/custom/path"
    with pytest.raises(ConfigError, match="ws://"):
        RemoteSTTEngine("http://stt-box:7003")


Handler = Callable[[httpx2.Request], httpx2.Response]


class _Pieces(httpx2.AsyncByteStream):
    """A response body that arrives in the given pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            self.sent += 1
            yield piece

    async def aclose(self) -> None:
        self.closed = True


def _tts(handler: Handler) -> RemoteTTSEngine:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return RemoteTTSEngine("http://tts-box:7002", "am_michael", 1.2, http_client=client)


def _collect(engine: RemoteTTSEngine, text: str = "Hello.") -> list[bytes]:
    async def run() -> list[bytes]:
        return [chunk async for chunk in engine.synthesize(text)]

    return asyncio.run(run())


def _ok(pieces: list[bytes], rate: str = "24000") -> Handler:
    return lambda _req: httpx2.Response(
        200, headers={"X-Sample-Rate": rate}, stream=_Pieces(pieces)
    )


def test_tts_client_posts_json_and_yields_the_payloads() -> None:
    seen: list[httpx2.Request] = []
    stream = _stream(PAYLOADS[:2])

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return _ok([stream[:3], stream[3:300], stream[300:]])(request)

    engine = _tts(handler)

    assert _collect(engine) == PAYLOADS[:2]
    (request,) = seen
    assert str(request.url) == "http://tts-box:7002/tts/stream"
    assert json.loads(request.content) == {"text": "Hello.", "voice": "am_michael", "speed": 1.2}
    assert engine.sample_rate == 24_000
    assert _collect(engine, "  ") == []
    assert len(seen) == 1


def test_tts_client_reports_a_cut_off_stream_as_retryable() -> None:
    engine = _tts(_ok([encode_frame(b"ab")]))

    with pytest.raises(RemoteServiceError, match="before its end marker") as caught:
        _collect(engine)
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("pieces", "rate", "match"),
    [
        ([encode_frame(b"abc") + END_OF_STREAM], "24000", "PCM16 chunk of 3 bytes"),
        ([_stream([b"ab"])], "16000", "16000 Hz, expected 24000"),
        ([b"\xff\xff\xff\xff"], "24000", "exceeds the limit"),
    ],
)
def test_tts_client_rejects_a_malformed_stream(pieces: list[bytes], rate: str, match: str) -> None:
    with pytest.raises(RemoteServiceError, match=match) as caught:
        _collect(_tts(_ok(pieces, rate)))
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (400, {"error": "unknown voice 'x'", "code": "unknown_voice", "retryable": False},
         "unknown_voice", False),
        (500, {"error": "engine broke", "code": "engine", "retryable": False}, "engine", False),
        (503, b"<html>busy</html>", "remote_service", True),
    ],
)  # fmt: skip
def test_tts_client_maps_error_statuses(
    status: int, body: dict[str, object] | bytes, code: str, retryable: bool
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    engine = _tts(lambda _req: httpx2.Response(status, content=content))

    with pytest.raises(RemoteServiceError, match=f"HTTP {status}") as caught:
        _collect(engine)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


def test_tts_client_closing_early_closes_the_response() -> None:
    body = _Pieces([encode_frame(b"\x00\x01" * 100)] * 50 + [END_OF_STREAM])
    engine = _tts(
        lambda _req: httpx2.Response(200, headers={"X-Sample-Rate": "24000"}, stream=body)
    )

    async def first_then_close() -> bytes:
        chunks = engine.synthesize("a long text")
        assert isinstance(chunks, AsyncGenerator)
        first: bytes = await anext(chunks)
        await chunks.aclose()
        return first

    assert asyncio.run(first_then_close()) == b"\x00\x01" * 100
    assert body.closed
    assert body.sent < 50


def test_tts_client_maps_connection_failures_to_retryable_errors() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    with pytest.raises(RemoteServiceError, match="ConnectError") as caught:
        _collect(_tts(refuse))
    assert caught.value.retryable
