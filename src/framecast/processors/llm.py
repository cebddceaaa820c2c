"""VLLMChat: the assistant's reply, streamed from any OpenAI-compatible endpoint.

vLLM in production, a llama.cpp server in the embedded default, OpenAI itself —
all speak ``/v1/chat/completions`` with ``stream=True``, through the ``openai``
async client (injected, so tests can hand it a mock transport).

When a reply starts
-------------------
The user's turn is over when ``EndOfTurn`` has arrived *and* the final transcript
of every speech segment of the turn has (the STT promises one final per pause). A
typed ``TextIn`` is a whole turn by itself. An empty turn (noise) gets no reply.

History
-------
The last ``history_turns`` exchanges are sent after the system prompt. The user
message is stored exactly as sent (with its emotion hint), so the next request
starts with the same tokens and the server's prompt cache covers it. When a reply
is cut by barge-in, the output reports what the user actually heard
(``PlaybackInterrupted``, travelling upstream) and the stored reply is cut to that.

Failures
--------
An unreachable endpoint, a timeout or an error status becomes a
:class:`~framecast.exceptions.RemoteServiceError` (an error frame for the client),
the reply ends with what it had, and the session goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loguru import logger

from framecast.exceptions import RemoteServiceError
from framecast.frames import (
    EmotionTag,
    EndOfTurn,
    Frame,
    LLMText,
    PlaybackInterrupted,
    ReplyEnded,
    ReplyStarted,
    TextIn,
    Transcript,
    UserStartedSpeaking,
    UserStoppedSpeaking,
)
from framecast.processor import UP, Direction, Processor

__all__ = ["DEFAULT_SYSTEM_PROMPT", "VLLMChat"]

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly voice assistant talking with a person. Reply directly to what they "
    "say, in one short spoken sentence. No lists, markdown, emoji or code."
)


@dataclass(slots=True)
class _Entry:
    turn: int
    role: str
    content: str


class VLLMChat(Processor):
    """Streams chat completions for each finished user turn.

    Args:
        client: an ``openai.AsyncOpenAI`` (or compatible) client.
        model: model id on the endpoint.
        system_prompt: first message of every request.
        max_tokens: cap per reply (short replies keep a voice bot responsive).
        temperature: sampling temperature.
        history_turns: exchanges of history sent with each request.
        extra_body: extra request fields (e.g. llama.cpp's ``id_slot`` to keep this
            conversation's prompt cache warm).
        timeout_s: request timeout (connect + whole stream).
        prefill: at session start, send the system prompt once so the server caches it.
        hint_min_score: an emotion tag becomes a hint only at or above this score, and
            never for ``neutral``/``calm`` (small models over-react to hints).
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_tokens: int = 256,
        temperature: float = 0.6,
        history_turns: int = 10,
        extra_body: Mapping[str, Any] | None = None,
        timeout_s: float = 30.0,
        prefill: bool = True,
        hint_min_score: float = 0.85,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._client = client
        self._prefill = prefill
        self._hint_min_score = hint_min_score
        self._model = model
        self._system = system_prompt
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._history_turns = history_turns
        self._extra_body = dict(extra_body or {})
        self._timeout = timeout_s
        self.history: list[_Entry] = []
        self._reset_turn()

    def _reset_turn(self) -> None:
        self._parts: list[str] = []
        self._segment_open = False
        self._finals_pending = 0
        self._turn_over = False
        self._emotion: EmotionTag | None = None

    def on_interruption(self, turn: int) -> None:
        self._reset_turn()

    async def on_start(self) -> None:
        if self._prefill:
            self.create_task(self._warm_cache(), turn=None)

    async def _warm_cache(self) -> None:
        """Prefill the system prompt into the server's prompt cache (the conversation prefix).

        A cold prompt costs ~6 ms a token on a small CPU model; done now, the first
        reply pays only for the user's words. Failures here are not the user's
        problem: the first real request reports them.
        """
        try:
            await self._client.chat.completions.create(
                model=self._model,
                messages=self._request(),
                max_tokens=1,
                temperature=0.0,
                extra_body=self._extra_body or None,
                timeout=self._timeout,
            )
        except Exception as exc:  # noqa: BLE001
            logger.debug("{}: prompt-cache prefill failed: {!r}", self.name, exc)

    @property
    def messages(self) -> list[dict[str, str]]:
        """The history as chat messages (without the system prompt)."""
        return [{"role": e.role, "content": e.content} for e in self.history]

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is UP:
            if isinstance(frame, PlaybackInterrupted):
                self._cut_reply(frame.reply_turn, frame.heard_text)
            await self.push(frame, direction)
            return
        await self.push(frame, direction)
        if isinstance(frame, UserStartedSpeaking):
            self._segment_open = True
            self._turn_over = False
        elif isinstance(frame, UserStoppedSpeaking) and self._segment_open:
            self._segment_open = False
            self._finals_pending += 1
        elif isinstance(frame, Transcript) and frame.final:
            self._finals_pending = max(0, self._finals_pending - 1)
            if frame.text.strip():
                self._parts.append(frame.text.strip())
            self._maybe_reply(frame.turn)
        elif isinstance(frame, EmotionTag):
            self._emotion = frame
        elif isinstance(frame, EndOfTurn):
            self._turn_over = True
            self._maybe_reply(frame.turn)
        elif isinstance(frame, TextIn):
            self._parts = [frame.text.strip()]
            self._turn_over = True
            self._finals_pending = 0
            self._maybe_reply(frame.turn)

    def _maybe_reply(self, turn: int) -> None:
        if not self._turn_over or self._finals_pending or self._segment_open:
            return
        text = " ".join(p for p in self._parts if p)
        emotion = self._emotion
        self._reset_turn()
        if not text:
            # Nothing was said (noise). If that noise cut off our reply before the
            # user heard any of it, their question is still unanswered: answer it.
            if self.history and self.history[-1].role == "user":
                self.history[-1].turn = turn
                self.create_task(self._reply(turn), turn=turn)
            return
        if (
            emotion is not None
            and emotion.label not in ("neutral", "calm")
            and emotion.score >= self._hint_min_score
        ):
            text = f"{text} (tone of voice: {emotion.label})"
        self._remember(turn, "user", text)
        self.create_task(self._reply(turn), turn=turn)

    def _remember(self, turn: int, role: str, content: str) -> None:
        if role == "user" and self.history and self.history[-1].role == "user":
            self.history[-1] = _Entry(turn, "user", f"{self.history[-1].content} {content}")
        else:
            self.history.append(_Entry(turn, role, content))
        users = [i for i, e in enumerate(self.history) if e.role == "user"]
        if len(users) > self._history_turns:
            del self.history[: users[-self._history_turns]]

    def _cut_reply(self, turn: int, heard: str) -> None:
        for i in range(len(self.history) - 1, -1, -1):
            entry = self.history[i]
            if entry.turn == turn and entry.role == "assistant":
                if heard.strip():
                    entry.content = heard.strip()
                else:
                    del self.history[i]
                return

    def _request(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self._system}, *self.messages]

    async def _reply(self, turn: int) -> None:
        session = self.session
        await self.push(ReplyStarted(turn=turn, ts=self.clock.now()))
        session.mark(turn, "llm_request")
        text: list[str] = []
        try:
            stream = await self._open(self._request())
            async with stream:
                async for chunk in stream:
                    if not chunk.choices:
                        continue
                    piece = chunk.choices[0].delta.content
                    if piece:
                        if not text:
                            session.mark(turn, "llm_first_token")
                        text.append(piece)
                        await self.push(LLMText(text=piece, turn=turn, ts=self.clock.now()))
        except asyncio.CancelledError:
            # Interrupted: keep what was generated; the output cuts it to what was heard.
            if text:
                self._remember(turn, "assistant", "".join(text).strip())
            raise
        except Exception as exc:
            if text:
                self._remember(turn, "assistant", "".join(text).strip())
            await self.push(ReplyEnded(turn=turn, text="".join(text), ts=self.clock.now()))
            raise _map_error(exc, self._client) from exc
        reply = "".join(text).strip()
        if reply:
            self._remember(turn, "assistant", reply)
        await self.push(ReplyEnded(turn=turn, text=reply, ts=self.clock.now()))

    async def _open(self, messages: list[dict[str, str]]) -> Any:
        return await self._client.chat.completions.create(
            model=self._model,
            messages=messages,
            stream=True,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            extra_body=self._extra_body or None,
            timeout=self._timeout,
        )


def _map_error(exc: Exception, client: Any) -> RemoteServiceError:
    """Turn an ``openai`` client error into a framecast error with ``retryable``."""
    import openai

    where = str(getattr(client, "base_url", "the LLM endpoint"))
    if isinstance(exc, openai.APITimeoutError):
        return RemoteServiceError(f"LLM at {where} timed out", retryable=True, service="llm")
    if isinstance(exc, openai.APIConnectionError):
        return RemoteServiceError(
            f"LLM at {where} is unreachable: {exc}", retryable=True, service="llm"
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return RemoteServiceError(
            f"LLM at {where} answered {status}: {exc.message}",
            retryable=status in (408, 409, 425, 429) or status >= 500,
            service="llm",
        )
    return RemoteServiceError(f"LLM stream failed: {exc!r}", retryable=False, service="llm")
