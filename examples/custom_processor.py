"""Writing a processor takes a few lines: override ``process``, call ``push``.

    .venv/bin/python examples/custom_processor.py

``Redactor`` keeps digits out of what the bot says aloud (say, to avoid reading
out account numbers), and ``WordCounter`` is a side analysis that only observes.
Both are tested here with the library's harness, without any model.
"""

from __future__ import annotations

import asyncio
import re

from framecast import Direction, Frame, LLMText, Processor, Sentence, TextIn
from framecast.testing import run_processors


class Redactor(Processor):
    """Replaces digits in spoken sentences; everything else passes untouched."""

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, Sentence):
            frame = Sentence(text=re.sub(r"\d", "#", frame.text), turn=frame.turn, ts=frame.ts)
        await self.push(frame, direction)


class WordCounter(Processor):
    """Counts the words of the reply text it sees (state resets on barge-in)."""

    def __init__(self) -> None:
        super().__init__()
        self.words = 0

    def on_interruption(self, turn: int) -> None:
        self.words = 0

    async def process(self, frame: Frame, direction: Direction) -> None:
        if isinstance(frame, LLMText):
            self.words += len(frame.text.split())
        await self.push(frame, direction)


async def main() -> None:
    counter = WordCounter()
    out = await run_processors(
        [counter, Redactor()],
        [
            TextIn(text="what is my pin?", turn=1),
            LLMText(text="Your pin is 1234.", turn=1),
            Sentence(text="Your pin is 1234.", turn=1),
        ],
    )
    for frame in out.data():
        print(frame)
    print("words seen:", counter.words)


if __name__ == "__main__":
    asyncio.run(main())
