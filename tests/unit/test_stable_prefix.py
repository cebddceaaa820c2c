"""StablePrefix: local agreement over flickering streaming-STT hypotheses."""

from __future__ import annotations

import pytest

from framecast.exceptions import ConfigError
from framecast.logic.stable_prefix import Partial, StablePrefix


def updates(hypotheses: list[str], **options: int) -> list[Partial]:
    prefix = StablePrefix(**options)
    return [prefix.update(hypothesis) for hypothesis in hypotheses]


def test_words_two_hypotheses_agree_on_are_committed() -> None:
    partials = updates(["Seven of", "Seven of f", "Seven of clubs", "Seven of clubs."])
    assert [(p.committed, p.tentative) for p in partials] == [
        ("", "Seven of"),
        ("Seven of", "f"),
        ("Seven of", "clubs"),
        ("Seven of clubs.", ""),
    ]
    assert [p.changed for p in partials] == [True, True, True, True]


def test_flickering_words_stay_tentative() -> None:
    partials = updates(
        [
            "go four",
            "go forward ten",
            "go forward tan meters",
            "go forward ten meters now",
            "go forward ten meters now",
        ]
    )
    assert [p.committed for p in partials] == [
        "",
        "go",
        "go forward",
        "go forward",
        "go forward ten meters now",
    ]
    assert partials[3].tentative == "ten meters now"


def test_committed_text_never_changes_even_when_the_stt_revises_it() -> None:
    prefix = StablePrefix()
    prefix.update("I want to go home")
    assert prefix.update("I want to go home now").committed == "I want to go home"
    later = prefix.update("I wanna go home now please")  # rewrites a committed word
    assert later.committed == "I want to go home now"  # "now" agreed with the last one
    assert later.tentative == "please"
    assert prefix.update("I wanna go home now please").committed == "I want to go home now please"


def test_words_compare_without_case_and_punctuation_but_keep_the_latest_spelling() -> None:
    partials = updates(["hello world", "Hello, World! How"])
    assert partials[1].committed == "Hello, World!"
    assert partials[1].tentative == "How"


def test_changed_is_false_when_nothing_moved() -> None:
    partials = updates(["a b", "a b", "a b", "a b c"])
    assert [(p.committed, p.tentative, p.changed) for p in partials] == [
        ("", "a b", True),
        ("a b", "", True),
        ("a b", "", False),
        ("a b", "c", True),
    ]


def test_three_way_agreement_waits_longer() -> None:
    partials = updates(["one two", "one two", "one three", "one three", "one three"], agree=3)
    assert [p.committed for p in partials] == ["", "", "one", "one", "one three"]


def test_agreement_of_one_commits_every_hypothesis() -> None:
    partials = updates(["one", "one two"], agree=1)
    assert [(p.committed, p.tentative) for p in partials] == [("one", ""), ("one two", "")]


def test_a_dropped_word_does_not_shift_the_tail() -> None:
    prefix = StablePrefix()
    prefix.update("the cat sat")
    prefix.update("the cat sat on")  # commits "the cat sat"
    partial = prefix.update("the sat on the mat")  # the STT lost "cat"
    assert (partial.committed, partial.tentative) == ("the cat sat on", "the mat")


def test_a_shorter_hypothesis_keeps_the_committed_words() -> None:
    prefix = StablePrefix()
    prefix.update("turn on the light")
    prefix.update("turn on the light")
    partial = prefix.update("turn")
    assert (partial.committed, partial.tentative) == ("turn on the light", "")


def test_partial_text_joins_committed_and_tentative() -> None:
    assert Partial(committed="a b", tentative="c", changed=True).text == "a b c"
    assert Partial(committed="", tentative="c", changed=True).text == "c"
    assert Partial(committed="a", tentative="", changed=True).text == "a"


def test_finalize_keeps_committed_words_and_takes_the_rest_from_the_final_text() -> None:
    prefix = StablePrefix()
    prefix.update("what is the whether")
    prefix.update("what is the whether in")
    assert prefix.committed == "what is the whether"
    assert prefix.finalize("What is the weather in Paris?") == "what is the whether in Paris?"
    assert prefix.committed == ""  # ready for the next utterance
    assert prefix.update("next one").committed == ""


def test_finalize_without_partials_returns_the_final_text() -> None:
    assert StablePrefix().finalize("  Hello   there. ") == "Hello there."


def test_bad_agreement_raises() -> None:
    with pytest.raises(ConfigError):
        StablePrefix(agree=0)


@pytest.mark.parametrize(
    "hypotheses",
    [
        [
            "so",
            "so I",
            "so I think",
            "so I thing we",
            "so I think we should",
            "so I think we should go.",
        ],
        ["A", "a b", "A B C", "x y", "a b c d", "a b c d e", "a b"],
        ["", "hi", "", "hi there", "hi there", "Hi there friend"],
    ],
)
def test_committed_text_only_grows(hypotheses: list[str]) -> None:
    committed = ""
    for partial in updates(hypotheses):
        assert partial.committed.startswith(committed)
        committed = partial.committed
