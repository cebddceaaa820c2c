"""SentenceSplitter: where a streamed reply is cut, and that nothing is lost or duplicated."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framecast.exceptions import ConfigError
from framecast.logic.sentences import SentenceSplitter, clean_for_speech


def split_all(text: str, **options: object) -> list[str]:
    """Feed the whole text at once, then flush."""
    splitter = SentenceSplitter(**options)  # type: ignore[arg-type]
    return splitter.feed(text) + splitter.flush()


def split_pieces(pieces: list[str], **options: object) -> list[str]:
    splitter = SentenceSplitter(**options)  # type: ignore[arg-type]
    chunks: list[str] = []
    for piece in pieces:
        chunks += splitter.feed(piece)
    return chunks + splitter.flush()


def cut_at(text: str, positions: list[int]) -> list[str]:
    bounds = [0, *sorted(set(positions)), len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


# (reply, expected chunks) with the defaults: eager first chunk from 3 words.
CASES = [
    # abbreviations, times, decimals and money do not end sentences
    (
        "Dr. Smith will see you at 10:30 a.m. tomorrow. It costs $2.50 today.",
        ["Dr. Smith will see you at 10:30 a.m. tomorrow.", "It costs $2.50 today."],
    ),
    (
        "Talk to Mr. and Mrs. Jones, e.g. on Main St. Louis is far.",
        ["Talk to Mr. and Mrs. Jones,", "e.g. on Main St. Louis is far."],
    ),
    (
        "Ms. J. K. Rowling wrote it. Pi is 3.14 here.",
        ["Ms. J. K. Rowling wrote it.", "Pi is 3.14 here."],
    ),
    ("Update to v1.2.3 now. Then restart.", ["Update to v1.2.3 now.", "Then restart."]),
    ("It was 5 vs. 3 in the end. Great.", ["It was 5 vs. 3 in the end.", "Great."]),
    # "No." before a number, "etc." and a.m./p.m. before a capital
    ("Take No. 5 now. I said no. Fine.", ["Take No. 5 now.", "I said no.", "Fine."]),
    (
        "Buy apples, pears etc. Then go. Bring pens etc. and paper. Meet at 5 p.m. Bye.",
        [
            "Buy apples, pears etc.",
            "Then go.",
            "Bring pens etc. and paper.",
            "Meet at 5 p.m.",
            "Bye.",
        ],
    ),
    ("I live in the U.S. It is big.", ["I live in the U.S.", "It is big."]),
    # quotes and brackets after the terminator stay with the sentence
    ('He said "hi." Then he left.', ['He said "hi."', "Then he left."]),
    ("Do it now (really!) Then rest.", ["Do it now (really!)", "Then rest."]),
    ("Really?! Yes!!! Sure.", ["Really?!", "Yes!!!", "Sure."]),
    # ellipsis: a cut only when the next word is capitalised
    ("Well... I think so.", ["Well...", "I think so."]),
    ("I was going to… never mind.", ["I was going to… never mind."]),
    # numbered lists, markdown lists and headers
    (
        "Steps:\n1. Open the app.\n2. Click Save.",
        ["Steps:", "1. Open the app.", "2. Click Save."],
    ),
    ("Three things matter. 1. Sleep. 2. Food.", ["Three things matter.", "1. Sleep.", "2. Food."]),
    ("I counted to 10. Then stopped.", ["I counted to 10.", "Then stopped."]),
    ("- eggs\n- milk\n* bread\n", ["eggs", "milk", "bread"]),
    ("## Summary\nAll **good** and _fine_ here.", ["Summary", "All good and fine here."]),
    ("> quoted line\n---\nAfter the rule.", ["quoted line", "After the rule."]),
    # code fences lose their markers, inline code its backticks
    ("Run this:\n```python\nprint(x)\n```\nDone.", ["Run this:", "print(x)", "Done."]),
    ("Call `my_func()` twice.", ["Call my_func() twice."]),
    # arithmetic and snake_case keep their symbols
    ("So 2 * 3 = 6 and 2*3 too. Use snake_case.", ["So 2 * 3 = 6 and 2*3 too.", "Use snake_case."]),
    # URLs are not cut at their dots; links keep their text
    (
        "Visit https://example.com/a.b?x=1. It helps.",
        ["Visit https://example.com/a.b?x=1.", "It helps."],
    ),
    ("See [the docs](https://x.org/d.html) first.", ["See the docs first."]),
    # emoji are removed, and do not glue sentences together
    ("Great job 🎉! Next one.", ["Great job !", "Next one."]),
    ("Hi!😀Bye now. I ❤️ it 👍🏽", ["Hi!", "Bye now.", "I it"]),
    # CJK sentence ends need no space
    ("你好。我是机器人！你呢？ Okay.", ["你好。", "我是机器人！", "你呢？", "Okay."]),
    ("他说「好。」然后走了。", ["他说「好。」", "然后走了。"]),
    # punctuation-only pieces join the next chunk; a trailing one is dropped
    ("Hi. !! Bye. 🙂", ["Hi.", "!! Bye."]),
    ("", []),
    ("   \n  ", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_chunks(text: str, expected: list[str]) -> None:
    assert split_all(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_chunks_when_fed_one_character_at_a_time(text: str, expected: list[str]) -> None:
    assert split_pieces(list(text)) == expected


def test_eager_first_chunk_ends_at_a_clause_once_it_has_enough_words() -> None:
    text = "Of course I can, let me check that. Then, as you said, we go."
    assert split_all(text) == [
        "Of course I can,",
        "let me check that.",
        "Then, as you said, we go.",  # only the first chunk is cut at a clause
    ]


@pytest.mark.parametrize(
    ("text", "min_words", "first"),
    [
        ("Sure, I can help with that.", 3, "Sure, I can help with that."),
        ("Sure, I can help with that.", 1, "Sure,"),
        ("Sure thing, I can help.", 2, "Sure thing,"),
        ("Right now: the answer is yes.", 2, "Right now:"),
        ("Well then — here it is.", 2, "Well then —"),
        ("At 10:30 we meet, okay.", 3, "At 10:30 we meet,"),  # "10:30" is no clause
        ("We had 1,000 cats, wow.", 3, "We had 1,000 cats,"),
    ],
)
def test_first_min_words(text: str, min_words: int, first: str) -> None:
    assert split_all(text, first_min_words=min_words)[0] == first


def test_eager_first_can_be_disabled() -> None:
    assert split_all("Of course I can, let me check.", eager_first=False) == [
        "Of course I can, let me check."
    ]


def test_reset_makes_the_next_chunk_a_first_chunk_again() -> None:
    splitter = SentenceSplitter(first_min_words=2)
    assert splitter.feed("Okay then, fine. Good") == ["Okay then,", "fine."]
    splitter.reset()  # barge-in: "Good" is dropped with the old reply
    assert splitter.feed("Yes indeed, sir. ") == ["Yes indeed,", "sir."]


def test_flush_resets_for_the_next_reply() -> None:
    splitter = SentenceSplitter(first_min_words=2)
    assert splitter.feed("Yes indeed, this is it") == ["Yes indeed,"]
    assert splitter.flush() == ["this is it"]
    assert splitter.flush() == []
    assert splitter.feed("Hello there, world. ") == ["Hello there,", "world."]


@pytest.mark.parametrize(
    ("held", "then", "expected"),
    [
        ("It is 3.", "14 now. ", ["It is 3.14 now."]),
        ("It is 3.", " Yes. ", ["It is 3.", "Yes."]),
        ("Ask Dr.", " Who. ", ["Ask Dr. Who."]),
        ("He said hi!", '" Then. ', ['He said hi!"', "Then."]),
        ("Bring pens etc. ", "and paper. ", ["Bring pens etc. and paper."]),
        ("Bring pens etc. ", "Then go. ", ["Bring pens etc.", "Then go."]),
    ],
)
def test_an_ambiguous_end_is_held_back_until_the_next_text_decides(
    held: str, then: str, expected: list[str]
) -> None:
    splitter = SentenceSplitter()
    assert splitter.feed(held) == []
    assert splitter.feed(then) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("It is 3.", ["It is 3."]), ("Ask the Dr.", ["Ask the Dr."]), ("Go on etc. ", ["Go on etc."])],
)
def test_flush_releases_held_back_text(text: str, expected: list[str]) -> None:
    splitter = SentenceSplitter()
    assert splitter.feed(text) == []
    assert splitter.flush() == expected


def test_a_sentence_end_is_released_as_soon_as_whitespace_follows() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there.") == []
    assert splitter.feed(" ") == ["Hello there."]
    assert splitter.feed("Next") == []


def test_a_newline_ends_a_chunk_at_once() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("- first item\n") == ["first item"]


def test_long_text_without_a_boundary_is_cut_at_the_last_space() -> None:
    text = "one two three four five six seven eight nine ten. Eleven."
    assert split_all(text, max_chars=20) == [
        "one two three four",
        "five six seven eight",
        "nine ten.",
        "Eleven.",
    ]


def test_a_word_longer_than_max_chars_is_kept_whole() -> None:
    text = "see https://example.com/a/very/long/path/indeed now"
    assert split_all(text, max_chars=10) == [
        "see",
        "https://example.com/a/very/long/path/indeed",
        "now",
    ]


@pytest.mark.parametrize("options", [{"first_min_words": 0}, {"max_chars": 0}])
def test_bad_options_raise(options: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        SentenceSplitter(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("markdown", "speech"),
    [
        ("**bold** and *it* and ***both***", "bold and it and both"),
        ("__init__ and _x_ and my_var", "init and x and my_var"),
        ("~~gone~~ `code` ```", "gone code "),
        ("# H1\n### H3\n  - nested\n+ plus\n• dot", "H1\nH3\nnested\nplus\ndot"),
        ("![a cat](cat.png) [site](http://a.b)", "a cat site"),
        ("Go 🚀🚀 now 🇫🇷!", "Go  now !"),
        ("keycap 1️⃣ and family 👨‍👩‍👧 ok", "keycap 1 and family  ok"),
        ("2 * 3 and 4*5", "2 * 3 and 4*5"),
    ],
)
def test_clean_for_speech(markdown: str, speech: str) -> None:
    assert clean_for_speech(markdown) == speech


# --- properties: any split gives the same chunks, and nothing is lost or duplicated ----

TRICKY_TEXTS = [text for text, _ in CASES] + [
    "Sure thing, I can help. Dr. Who? No. 5, e.g. the U.K. version... Okay!",
    'She said: "Wait... what?" Then (quietly) left. 1. a\n2. b\n\n## Next\n- x **y** z',
    "Costs $2.50, or 3.14 at 10:30 p.m. Version 2.0.1 is out. Visit www.a.org/x.y. Yes.",
    "```js\nlet a = b.c;\n```\n> Note: it's *fine*. 🎉 Done!! Really?!\n",
    "一二三。四五六！ mixed text. 七八九？",
]


def check_lossless(text: str, chunks: list[str]) -> None:
    """The chunks, joined, are the cleaned text; only a trailing wordless piece may go."""
    expected = clean_for_speech(text).split()
    got = " ".join(chunks).split()
    if any("\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text):
        # CJK ends need no space, so joining the chunks adds one: compare characters
        expected, got = ["".join(expected)], ["".join(got)]
        assert expected[0].startswith(got[0])
        assert not any(ch.isalnum() for ch in expected[0][len(got[0]) :])
        return
    assert got == expected[: len(got)]
    assert not any(ch.isalnum() for word in expected[len(got) :] for ch in word)
    assert all(chunk and chunk == " ".join(chunk.split()) for chunk in chunks)


@pytest.mark.parametrize("text", TRICKY_TEXTS)
@pytest.mark.parametrize("max_chars", [250, 24])
def test_random_splits_give_the_same_chunks(text: str, max_chars: int) -> None:
    rng = random.Random(f"{text}{max_chars}")
    reference = split_all(text, max_chars=max_chars)
    check_lossless(text, reference)
    for _ in range(30):
        positions = [rng.randrange(len(text) + 1) for _ in range(rng.randrange(1, 12))]
        assert split_pieces(cut_at(text, positions), max_chars=max_chars) == reference


# fmt: off
TOKENS = [
    " ", " ", " ", "\n", "\n\n", "word", "Then", "okay", "I", "Dr.", "Mr.", "No.", "no.", "5",
    "1.", "12", "3.14", "$2.50", "10:30", "v1.2", "etc.", "e.g.", "U.S.", "a.m.", ".", ".",
    "...", "…", "!", "?", "?!", ",", ";", ":", "—", '"', "'", ")", "(", "**", "*", "_", "`",
    "```", "# ", "- ", "> ", "😀", "👍🏽", "https://x.org/a.b", "你好", "。", "！", "[", "](u)",
    "~~", "\t", "St.", "J.", "Ph.D.", "」", "2 * 3", "snake_case", "1️⃣", "---",
]
# fmt: on


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    tokens=st.lists(st.sampled_from(TOKENS), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
    max_chars=st.sampled_from([250, 30, 8]),
    min_words=st.integers(min_value=1, max_value=4),
    max_words=st.sampled_from([None, 4, 6]),
)
def test_property_any_split_same_chunks_nothing_lost(
    tokens: list[str], cuts: list[int], max_chars: int, min_words: int, max_words: int | None
) -> None:
    text = "".join(tokens)
    options = {"max_chars": max_chars, "first_min_words": min_words, "first_max_words": max_words}
    reference = split_all(text, **options)
    check_lossless(text, reference)
    pieces = cut_at(text, [c for c in cuts if c <= len(text)])
    assert split_pieces(pieces, **options) == reference


@pytest.mark.parametrize(
    ("text", "first"),
    [
        # Cut before a function word when one comes within the limit...
        ("Seven clubs are playing in a friendly match.", "Seven clubs are playing"),
        ("Go forward ten meters to reach your goal.", "Go forward ten meters"),
        # ...else right after the limit.
        (
            "Paris remains France's lovely old capital city today.",
            "Paris remains France's lovely old",
        ),
        # Punctuation inside the limit still wins; a short sentence is not cut.
        ("To boil an egg, first put it in water.", "To boil an egg,"),
        ("The capital of France is Paris.", "The capital of France is Paris."),
    ],
)
def test_first_chunk_is_capped_at_a_few_words(text: str, first: str) -> None:
    chunks = split_all(text, first_min_words=2, first_max_words=5)
    assert chunks[0] == first
    check_lossless(text, chunks)
    assert split_all(text, first_min_words=2, first_max_words=5)[1:] == chunks[1:]


def test_only_the_first_chunk_is_capped() -> None:
    text = "Okay. Then a very long second sentence follows here without any break at all."
    assert split_all(text, first_max_words=3) == [
        "Okay.",
        "Then a very long second sentence follows here without any break at all.",
    ]
