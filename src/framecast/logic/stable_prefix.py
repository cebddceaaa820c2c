"""Which words of a streaming transcript are settled (local agreement).

Streaming STT re-transcribes the growing utterance and each hypothesis may rewrite the
last words ("Seven of f-" becomes "Seven of clubs"). Acting on such words (showing them,
starting the LLM early) needs a rule for when a word is settled: a word is *committed*
once the last ``agree`` consecutive hypotheses agree on it and on every word before it
(LocalAgreement-n, as in whisper_streaming; n = 2 by default). Committed text never
changes afterwards; the rest of the latest hypothesis is *tentative*.

Words are compared case- and punctuation-insensitively ("Hello," = "hello"), and the
committed words keep the spelling of the hypothesis that committed them.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from difflib import SequenceMatcher

from framecast.exceptions import ConfigError

__all__ = ["Partial", "StablePrefix"]

_NOT_ALNUM = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Partial:
    """A partial transcript split into settled and unsettled words.

    Attributes:
        committed: words that will not change for the rest of the utterance.
        tentative: the latest hypothesis after the committed words; may still change.
        changed: whether ``committed`` or ``tentative`` differs from the previous update.
    """

    committed: str
    tentative: str
    changed: bool

    @property
    def text(self) -> str:
        """The whole partial transcript: committed, then tentative words."""
        return f"{self.committed} {self.tentative}".strip()


@dataclass(frozen=True, slots=True)
class _Word:
    text: str  # as the STT spelled it
    key: str  # what is compared: lower case, letters and digits only


class StablePrefix:
    """Commit the words that consecutive STT hypotheses of one utterance agree on.

    Call :meth:`update` with every partial hypothesis of the utterance (each one the
    transcript of all its audio so far), then :meth:`finalize` with the final
    transcript; that also starts the next utterance.

    Args:
        agree: how many consecutive hypotheses must agree before words are committed.

    Raises:
        ConfigError: if ``agree`` is below 1.
    """

    def __init__(self, *, agree: int = 2) -> None:
        if agree < 1:
            raise ConfigError(f"agree must be >= 1, got {agree}")
        self._agree = agree
        self.reset()

    @property
    def committed(self) -> str:
        """The committed words so far."""
        return " ".join(word.text for word in self._committed)

    def reset(self) -> None:
        """Forget the utterance; nothing is committed."""
        self._committed: list[_Word] = []
        # The uncommitted tails of the last `agree` hypotheses, oldest first.
        self._tails: deque[list[_Word]] = deque(maxlen=self._agree)
        self._last = Partial(committed="", tentative="", changed=False)

    def update(self, hypothesis: str) -> Partial:
        """Take the next hypothesis for the utterance and return what is settled.

        The hypothesis is aligned with the committed words first, so a hypothesis that
        rewrites an already committed word ("wanna" for "want to") does not shift or
        duplicate the rest.
        """
        words = _words(hypothesis)
        tail = words[self._align(words) :]
        self._tails.append(tail)
        if len(self._tails) == self._agree:
            agreed = _common_prefix_length(self._tails)
            self._committed += tail[:agreed]
            for index, old in enumerate(self._tails):
                self._tails[index] = old[agreed:]
        committed = self.committed
        tentative = " ".join(word.text for word in self._tails[-1])
        changed = (committed, tentative) != (self._last.committed, self._last.tentative)
        self._last = Partial(committed=committed, tentative=tentative, changed=changed)
        return self._last

    def finalize(self, text: str) -> str:
        """Return the utterance's final transcript and reset for the next utterance.

        The committed words stay as they were (something may already have acted on
        them); the final transcript supplies everything after them.
        """
        words = _words(text)
        rest = words[self._align(words) :]
        final = " ".join(word.text for word in self._committed + rest)
        self.reset()
        return final

    def _align(self, words: list[_Word]) -> int:
        """Index in ``words`` just after the part that corresponds to the committed words."""
        committed = [word.key for word in self._committed]
        keys = [word.key for word in words]
        if keys[: len(committed)] == committed:
            return len(committed)
        blocks = SequenceMatcher(None, committed, keys, autojunk=False).get_matching_blocks()
        matched = [block for block in blocks if block.size]
        if not matched:  # nothing in common: assume the words line up one to one
            return min(len(committed), len(keys))
        last = matched[-1]
        unmatched_committed = len(committed) - (last.a + last.size)
        return min(len(keys), last.b + last.size + unmatched_committed)


def _words(text: str) -> list[_Word]:
    return [_Word(word, _NOT_ALNUM.sub("", word.casefold())) for word in text.split()]


def _common_prefix_length(tails: deque[list[_Word]]) -> int:
    length = 0
    for column in zip(*tails, strict=False):
        if any(word.key != column[0].key for word in column):
            break
        length += 1
    return length
