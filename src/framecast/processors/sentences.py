"""SentenceAggregator: cuts the LLM's token stream into speakable chunks for TTS.

A thin shell around :class:`framecast.logic.sentences.SentenceSplitter`: reply text
goes on untouched (the client shows it), and each complete chunk follows as a
``Sentence``. The first chunk of a reply may be an early clause, to start speaking
sooner. ``ReplyEnded`` flushes the rest; an interruption discards it.
"""

from __future__ import annotations

from framecast.frames import Frame, LLMText, ReplyEnded, ReplyStarted, Sentence
from framecast.logic.sentences import SentenceSplitter
from framecast.processor import DOWN, Direction, Processor

__all__ = ["SentenceAggregator"]


class SentenceAggregator(Processor):
    """Token stream in, ``Sentence`` frames out (text frames pass through).

    Args:
        eager_first: allow the reply's first chunk to end at a clause boundary.
        first_min_words: words the eager first clause needs ("Sure, ..." with 2: a
            2-4-word first chunk is the cheapest audio to make, LATENCY.md lever 2).
        first_max_words: the first chunk ends after this many words even without a
            clause mark (None: only at punctuation).
    """

    def __init__(
        self,
        *,
        eager_first: bool = True,
        first_min_words: int = 2,
        first_max_words: int | None = 5,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._splitter = SentenceSplitter(
            eager_first=eager_first,
            first_min_words=first_min_words,
            first_max_words=first_max_words,
        )
        self._first = True

    def on_interruption(self, turn: int) -> None:
        self._splitter.reset()
        self._first = True

    async def process(self, frame: Frame, direction: Direction) -> None:
        if direction is not DOWN:
            await self.push(frame, direction)
            return
        if isinstance(frame, ReplyStarted):
            self._splitter.reset()
            self._first = True
            await self.push(frame, direction)
        elif isinstance(frame, LLMText):
            await self.push(frame, direction)
            await self._emit(self._splitter.feed(frame.text), frame.turn)
        elif isinstance(frame, ReplyEnded):
            await self._emit(self._splitter.flush(), frame.turn)
            self._first = True
            await self.push(frame, direction)
        else:
            await self.push(frame, direction)

    async def _emit(self, chunks: list[str], turn: int) -> None:
        for chunk in chunks:
            if self._first:
                self.session.mark(turn, "first_sentence")
                self._first = False
            await self.push(Sentence(text=chunk, turn=turn, ts=self.clock.now()))
