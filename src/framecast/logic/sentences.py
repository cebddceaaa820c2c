"""Turn an LLM token stream into speakable chunks for TTS.

TTS synthesizes one chunk at a time, so where the reply is cut decides both the time to
first audio and the prosody: a cut inside "Dr. Smith" or "3.14" sounds broken, while
waiting for a whole paragraph wastes seconds. :class:`SentenceSplitter` cuts at sentence
ends, and the first chunk of a reply may already end at a clause (", " etc.), because
"a 2-4 word first chunk is the latency lever" (LATENCY.md: "Sure," then the rest is
synthesized 240 ms sooner than the whole sentence).

Where a chunk ends (in the raw text):

- after ``. ! ?`` (or a run such as ``?!``), plus any closing quotes, brackets or
  markdown markers (``He said "hi." Then`` is cut after the quote), followed by
  whitespace. A "." followed by anything else (``3.14``, ``$2.50``, ``v1.2``,
  ``example.com/a.b``) is never an end;
- after ``。！？`` (CJK text has no spaces, so no whitespace is needed);
- before a newline: a line break ends a chunk (markdown list items, headers, paragraphs);
- not after an abbreviation or initial: ``Dr. Mr. Mrs. Ms. St. Prof. vs. e.g. i.e.
  J.`` never end a sentence; ``No.`` ends one unless a number follows (``No. 5``);
  ``etc. a.m. p.m. Inc. Jr.`` and dotted acronyms (``U.S.``) end one only when the next
  word is capitalised (``at 10 a.m. tomorrow`` stays whole; ``the U.S. Army`` is cut,
  a documented miss);
- not after a list number at the start of a line or chunk (``1. First``);
- after an ellipsis (``...`` or ``…``) only when the next word is capitalised:
  ``Well... I think`` is two chunks (the ellipsis is a pause and a cut sounds like
  one), ``I was going to... never mind`` is one.

A "." or "!" at the end of the buffer is ambiguous until the next character arrives
(``3.`` may become ``3.14``; ``hi!`` may become ``hi!"``), and an abbreviation may wait
for the next word; such text is held back, except at :meth:`SentenceSplitter.flush`.
A chunk must contain a letter or digit; punctuation-only pieces join the next chunk.

Chunks are cleaned for speech with :func:`clean_for_speech` (markdown and emoji
removed) and their whitespace collapsed. Every decision depends on the text only, never
on how it was split into tokens, so the chunks are the same for any split; joined with
spaces they give the cleaned input (whitespace-normalized), except a trailing piece
without letters or digits, which :meth:`~SentenceSplitter.flush` drops.
"""

from __future__ import annotations

import re
from typing import Final

from framecast.exceptions import ConfigError

__all__ = ["SentenceSplitter", "clean_for_speech"]

DEFAULT_MAX_CHARS: Final = 250
"""A cut every ~250 characters keeps one chunk well inside Kokoro's 510-phoneme batch."""

_CLOSERS: Final = frozenset("\"')}”’»」』）】》*_`~")
_OPENERS: Final = frozenset("\"'([{“‘«「『（【《*_`~¿¡")
_CLAUSE_MARKS: Final = frozenset(",;:—–")
_CJK_ENDS: Final = frozenset("。！？")

# A candidate cut: a run of sentence punctuation, a newline, or a clause mark.
_CANDIDATE: Final = re.compile(r"[.!?…]+|[。！？]+|\n|[,;:—–]")

# Abbreviations (lower case, without the final dot) that a name or more text follows.
_NEVER_END: Final = frozenset(
    "mr mrs ms dr prof st sr rev gen capt lt col sgt hon mt ft vs cf approx fig e.g i.e".split()
)
# Abbreviations that precede a number ("No. 5") but end a sentence otherwise ("I said no.").
_BEFORE_NUMBER: Final = frozenset("no nos vol pp".split())
# Abbreviations that end a sentence when the next word is capitalised.
_END_IF_CAPITAL: Final = frozenset(
    "etc a.m p.m inc ltd co corp jr ph.d jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_DOTTED_ACRONYM: Final = re.compile(r"(?:[a-z]\.)+[a-z]")


# --- cleaning -------------------------------------------------------------------------

# Block markdown, one line at a time (re.M): fences with their info string, rules,
# headers, quotes and bullets. Numbered list markers stay: "1." is read as "one".
_FENCE_LINE: Final = re.compile(r"^[ \t]*(?:```|~~~)[\w+#.-]*[ \t]*$", re.M)
_RULE_LINE: Final = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$", re.M)
_LINE_MARKER: Final = re.compile(r"^[ \t]*(?:#{1,6}|>|[-*+•])[ \t]+", re.M)
# Inline markdown: [text](url) and ![alt](url) keep their text. The brackets go one by
# one, so a chunk cut inside the link text is cleaned as the whole reply would be.
_LINK_TARGET: Final = re.compile(r"\]\([^)\s]*\)")
_BRACKET: Final = re.compile(r"!?\[|\]")
_EMPHASIS: Final = re.compile(r"\*+|_+|~~+|`+")
# Pictographs, dingbats, flags, keycaps, skin tones, ZWJ and variation selectors.
_EMOJI_CHARS: Final = (
    "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff"
    "\U0001f1e6-\U0001f1ff\U000e0020-\U000e007f\u200d\ufe0e\ufe0f\u20e3"
)
_EMOJI: Final = re.compile(f"[{_EMOJI_CHARS}]+")


def clean_for_speech(text: str) -> str:
    """Remove what a TTS engine would read aloud but should not: markdown and emoji.

    Headers, bullets, quote markers, rules and code fences go; link text stays (square
    brackets go); ``*`` and ``_`` go unless they are arithmetic (``2 * 3``) or inside a
    word (``snake_case``); backticks and ``~~`` go; emoji go (a space stays if a word
    follows). Code inside fences is kept. Whitespace is left as it is.
    """
    return _clean_inline(_clean_block(text))


def _clean_block(text: str) -> str:
    text = _FENCE_LINE.sub("", text)
    text = _RULE_LINE.sub("", text)
    return _LINE_MARKER.sub("", text)


def _clean_inline(text: str) -> str:
    unlinked = _BRACKET.sub("", _LINK_TARGET.sub("", text))
    plain = _EMPHASIS.sub(lambda m: _emphasis(unlinked, m), unlinked)
    return _EMOJI.sub(lambda m: _emoji(plain, m), plain)


def _emphasis(text: str, match: re.Match[str]) -> str:
    """Drop a run of markdown markers unless it is arithmetic or joins a word."""
    marker = match.group()
    before = text[match.start() - 1] if match.start() else " "
    after = text[match.end()] if match.end() < len(text) else " "
    if marker[0] == "*" and (
        (before.isspace() and after.isspace()) or (before.isdigit() and after.isdigit())
    ):
        return marker  # "2 * 3", "2*3"
    if marker[0] == "_" and before.isalnum() and after.isalnum():
        return marker  # "snake_case"
    return ""


def _emoji(text: str, match: re.Match[str]) -> str:
    """Drop emoji; keep a space if a word follows, so "Hi!😀Bye" becomes "Hi! Bye".

    The spaces around emoji stay ("Great 😀!" becomes "Great !"): a chunk may be cut
    at them, and TTS reads both spellings the same.
    """
    after = text[match.end()] if match.end() < len(text) else " "
    return " " if after.isalnum() else ""


def _speech(raw: str, *, line_start: bool) -> str:
    """Clean one raw chunk; ``line_start`` says whether it begins a line of the reply."""
    if not line_start:  # line markers only count at the start of a line
        head, newline, tail = raw.partition("\n")
        raw = head + newline + _clean_block(tail)
    else:
        raw = _clean_block(raw)
    return " ".join(_clean_inline(raw).split())


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


# --- splitting ------------------------------------------------------------------------


class _Wait:
    """The text so far cannot decide this cut; feed more."""


_WAIT: Final = _Wait()


class SentenceSplitter:
    """Cut a streamed reply into speakable chunks, the first one as early as possible.

    Feed the LLM's text deltas in order with :meth:`feed`, call :meth:`flush` when the
    reply ends, and :meth:`reset` before the next reply (or after a barge-in).

    Args:
        eager_first: let the first chunk of a reply end at a clause mark
            (``, ; : — –`` followed by whitespace) to start TTS sooner.
        first_min_words: words the first chunk needs before a clause mark may end it.
        first_max_words: if set, the first chunk ends after at most this many words even
            without a clause mark (before a function word such as "in" or "and" where
            one follows within the limit): a 2-5-word first chunk is the cheapest audio
            to make, so the reply starts sooner.
        max_chars: cut a chunk with no sentence end at its last space before this many
            characters (a chunk of one longer word is cut at the next space).

    Raises:
        ConfigError: if ``first_min_words`` or ``max_chars`` is below 1.
    """

    def __init__(
        self,
        *,
        eager_first: bool = True,
        first_min_words: int = 3,
        first_max_words: int | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        if first_max_words is not None and first_max_words < first_min_words:
            raise ConfigError(
                f"first_max_words ({first_max_words}) is below first_min_words ({first_min_words})"
            )
        if first_min_words < 1 or max_chars < 1:
            raise ConfigError(
                f"first_min_words and max_chars must be >= 1, got {first_min_words}, {max_chars}"
            )
        self._eager_first = eager_first
        self._first_min_words = first_min_words
        self._first_max_words = first_max_words
        self._max_chars = max_chars
        self.reset()

    def reset(self) -> None:
        """Forget the current reply; the next chunk is a reply's first again."""
        self._buf = ""
        self._line_start = True
        self._first_pending = True

    def feed(self, text: str) -> list[str]:
        """Add the next piece of the reply and return the chunks it completes (maybe none)."""
        self._append(text)
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End the reply: return the remaining chunks (held-back text included), then reset."""
        chunks = self._drain(final=True)
        rest = _speech(self._buf, line_start=self._line_start)
        if _has_word(rest):
            chunks.append(rest)
        self.reset()
        return chunks

    def _append(self, text: str) -> None:
        if not self._buf:  # the buffer starts at a chunk's first non-space character
            stripped = text.lstrip()
            if "\n" in text[: len(text) - len(stripped)]:
                self._line_start = True
            text = stripped
        self._buf += text

    def _drain(self, *, final: bool) -> list[str]:
        chunks = []
        while (end := self._find_cut(final=final)) is not None:
            chunks.append(_speech(self._buf[:end], line_start=self._line_start))
            self._first_pending = False
            rest = self._buf[end:]
            self._buf = ""
            self._line_start = False
            self._append(rest)
        return chunks

    def _find_cut(self, *, final: bool) -> int | None:
        """Return where the buffer's first complete chunk ends, or None to wait for more."""
        buf = self._buf
        cap = self._first_cap()
        for match in _CANDIDATE.finditer(buf):
            if cap is not None and match.start() >= cap[0]:
                return cap[1]  # the first chunk's word limit comes before this mark
            if match.start() > self._max_chars:
                break
            end = self._judge(buf, match, final=final)
            if isinstance(end, _Wait):
                return None
            if end is not None and end <= self._max_chars and _has_word(self._clean(buf[:end])):
                return end
        return cap[1] if cap is not None else self._cap_cut()

    def _first_cap(self) -> tuple[int, int] | None:
        """The first chunk's word limit: (end of the limit-th word, where to cut).

        The cut is before the last function word ("in", "and", ...) within the limit,
        so the chunk reads as a phrase, else right after the limit-th word. Decided only
        once the word after the limit is complete, so the result is the same however the
        text was split into pieces. None: no limit, not the first chunk, or not yet.
        """
        limit = self._first_max_words
        if limit is None or not (self._eager_first and self._first_pending):
            return None
        complete = [m for m in _WORD.finditer(self._buf) if m.end() < len(self._buf)]
        if len(complete) <= limit:
            return None
        hard = complete[limit - 1].end()
        cut = hard
        for i in range(limit - 1, self._first_min_words - 1, -1):
            if complete[i].group().lower() in _BREAK_BEFORE:
                cut = complete[i - 1].end()
                break
        return (hard, cut) if _has_word(self._clean(self._buf[:cut])) else None

    def _judge(self, buf: str, match: re.Match[str], *, final: bool) -> int | None | _Wait:
        """Decide one candidate: the chunk's end index, None (no end here) or wait."""
        mark, start, stop = match.group(), match.start(), match.end()
        if mark == "\n":
            return start
        if mark in _CLAUSE_MARKS:
            if not (self._eager_first and self._first_pending):
                return None
            if len(self._clean(buf[:stop]).split()) < self._first_min_words:
                return None
            if stop == len(buf):
                return None if final else _WAIT
            return stop if buf[stop].isspace() else None
        end = stop
        while end < len(buf) and buf[end] in _CLOSERS:
            end += 1
        if end == len(buf):
            return end if final else _WAIT
        if mark[0] in _CJK_ENDS:
            return end
        gap = _gap_after(buf, end)
        if gap is None:
            return None if final else _WAIT
        if not gap:
            return None  # 3.14, example.com, "hi!there"
        if "!" in mark or "?" in mark:
            return end
        if mark != ".":  # an ellipsis
            return _if_capital_follows(buf, end, final=final)
        return _judge_period(buf, start, end, final=final)

    def _cap_cut(self) -> int | None:
        """Cut an over-long chunk at its last space within max_chars (else the next space)."""
        buf, limit = self._buf, self._max_chars
        if len(buf) <= limit:
            return None
        spaces = [pos for pos in range(1, len(buf)) if buf[pos].isspace()]
        within = [pos for pos in reversed(spaces) if pos <= limit]
        beyond = [pos for pos in spaces if pos > limit]
        for pos in within + beyond:
            if _has_word(self._clean(buf[:pos])):
                return pos
        return None  # no word yet, or one long word: wait (flush() emits it whole)

    def _clean(self, raw: str) -> str:
        return _speech(raw, line_start=self._line_start)


_WORD = re.compile(r"\S+")
#: Words a phrase naturally starts with: cutting before them keeps a chunk whole-sounding.
_BREAK_BEFORE = frozenset(
    "a an the and but or so because in on at to for with of from that which who when "
    "while if as about into".split()
)


def _gap_after(buf: str, pos: int) -> bool | None:
    """Whether a sentence may end before ``pos``: whitespace follows, or emoji and then a
    space or a word ("Hi!😀Bye" is read "Hi! Bye"); None if the buffer ends in emoji."""
    if buf[pos].isspace():
        return True
    match = _EMOJI.match(buf, pos)
    if match is None:
        return False
    if match.end() == len(buf):
        return None
    return buf[match.end()].isspace() or buf[match.end()].isalnum()


def _judge_period(buf: str, dot: int, end: int, *, final: bool) -> int | None | _Wait:
    """Decide whether a single "." followed by whitespace ends a sentence."""
    word_start = dot
    while word_start > 0 and not buf[word_start - 1].isspace():
        word_start -= 1
    word = buf[word_start:dot].lstrip("".join(_OPENERS))
    key = word.lower()
    if word.isdigit() and len(word) <= 3 and _starts_line(buf, word_start):
        return None  # a numbered list item: "1. First"
    if key in _NEVER_END or (len(word) == 1 and word.isupper()):
        return None  # "Dr. Smith", "J. K. Rowling"
    if key in _BEFORE_NUMBER:
        return _unless_digit_follows(buf, end, final=final)
    if key in _END_IF_CAPITAL or _DOTTED_ACRONYM.fullmatch(key):
        return _if_capital_follows(buf, end, final=final)
    return end


def _starts_line(buf: str, pos: int) -> bool:
    before = buf[:pos].rstrip(" \t")
    return not before or before.endswith("\n")


def _next_word(buf: str, pos: int) -> int | None:
    """Index of the first character of the word after ``pos``, if it has arrived."""
    while pos < len(buf) and (buf[pos].isspace() or buf[pos] in _OPENERS or _EMOJI.match(buf, pos)):
        pos += 1
    return pos if pos < len(buf) else None


def _if_capital_follows(buf: str, end: int, *, final: bool) -> int | None | _Wait:
    nxt = _next_word(buf, end)
    if nxt is None:
        return end if final or "\n" in buf[end:] else _WAIT
    if "\n" in buf[end:nxt]:
        return end
    return end if buf[nxt].isupper() else None


def _unless_digit_follows(buf: str, end: int, *, final: bool) -> int | None | _Wait:
    nxt = _next_word(buf, end)
    if nxt is None:
        return end if final or "\n" in buf[end:] else _WAIT
    return None if buf[nxt].isdigit() else end
