"""A text-only chat pipeline: type a line, get the reply streamed sentence by sentence.

    .venv/bin/python examples/text_chat.py

No audio at all: the same LLM and sentence processors as the voice bot, with a
tiny processor at the end that prints what it receives.
"""

from __future__ import annotations

import asyncio
import sys

from openai import AsyncOpenAI

from framecast import Direction, Frame, Processor, ReplyEnded, Sentence, Session, TextIn
from framecast.engines import LlamaServer
from framecast.models import ModelStore
from framecast.processors import SentenceAggregator, VLLMChat


class Printer(Processor):
    """Prints each sentence as it is ready; wakes the prompt when the reply ends."""

    def __init__(self) -> None:
        super().__init__()
        self.reply_done = asyncio.Event()

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, Sentence):
            print(f"  bot> {frame.text}", flush=True)
        elif isinstance(frame, ReplyEnded):
            self.reply_done.set()
        await self.push(frame, direction)


async def main() -> None:
    model = ModelStore().path("qwen2.5-coder-0.5b")  # `framecast models fetch` installs it
    async with LlamaServer(model) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="none")
        printer = Printer()
        session = Session([VLLMChat(client, model=server.alias), SentenceAggregator(), printer])
        async with session:
            loop = asyncio.get_running_loop()
            while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
                printer.reply_done.clear()
                turn = await session.interrupt()  # each line is a new turn
                await session.push(TextIn(text=line, turn=turn))
                await printer.reply_done.wait()


if __name__ == "__main__":
    asyncio.run(main())
