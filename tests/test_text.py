import pytest

from core.text import join_sentences, split_sentences, word_tokenize


@pytest.mark.parametrize("text, expected", [
    ("Dr. Smith went to Washington, D.C. on Jan. 5th. He met Mr. Brown at 3 p.m. They left.",
     ["Dr. Smith went to Washington, D.C. on Jan. 5th.", "He met Mr. Brown at 3 p.m.", "They left."]),
    ("We talked about the economy, e.g. inflation vs. growth! Then we left.",
     ["We talked about the economy, e.g. inflation vs. growth!", "Then we left."]),
    ("Honestly... I don't know. Wait... what?", ["Honestly...", "I don't know.", "Wait... what?"]),
    ("That sounds really hard 😢 I'm here for you. Have you talked to anyone? 💙",
     ["That sounds really hard 😢 I'm here for you.", "Have you talked to anyone? 💙"]),
    ("No final punctuation here", ["No final punctuation here"]),
    ("i feel so alone. i dont know what to do anymore. maybe tomorrow",
     ["i feel so alone.", "i dont know what to do anymore.", "maybe tomorrow"]),
    ("I hear you\nIt gets better\n\nHang in there", ["I hear you", "It gets better", "Hang in there"]),
    ("I love dogs, cats, etc. They are great.", ["I love dogs, cats, etc.", "They are great."]),
    ("wait... i thought so", ["wait... i thought so"]),
])
def test_split_sentences_hard_cases(text, expected):
    assert split_sentences(text) == expected


@pytest.mark.parametrize("blank", ["", "   ", "\n\n"])
def test_split_sentences_blank(blank):
    assert split_sentences(blank) == []


def test_join_drops_empty_sentences():
    assert join_sentences(["Hi.", "", "  ", "Bye."]) == "Hi. Bye."


def test_split_then_join_is_stable():
    text = "I'm sorry. That sounds hard! What happened next?"
    assert join_sentences(split_sentences(text)) == text


def test_word_tokenize_lowercases_and_splits_punctuation():
    assert word_tokenize("I'm so sorry, that's hard. Don't give up!") == [
        "i", "'m", "so", "sorry", ",", "that", "'s", "hard", ".", "do", "n't", "give", "up", "!"]
    assert word_tokenize("") == []
