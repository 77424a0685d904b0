from __future__ import annotations

import pytest

from sutradhar.text.wer import (
    corpus_word_error_rate,
    normalize_words,
    word_error_rate,
    word_errors,
)


def test_numbers_count_as_the_same_words_however_they_are_written() -> None:
    said = "Where is order four five six seven"
    for heard in ("Where is order 4567?", "where is order 4,567", "Where is order 45 67.",
                  "Where is order four-five-six-seven"):
        assert word_errors(said, heard) == 0, heard


def test_case_and_punctuation_do_not_count_but_apostrophes_stay_in_words() -> None:
    assert normalize_words("Can I talk to a human, please?") == ["can", "i", "talk", "to", "a", "human",
                                                                  "please"]
    assert normalize_words("I don't know.") == ["i", "don't", "know"]
    assert word_errors("I do not know", "I don't know") == 2  # a different word, not a spelling


def test_substitutions_deletions_and_insertions_each_count_once() -> None:
    assert word_errors("the cat sat", "the bat sat down") == 2
    assert word_error_rate("the cat sat", "the bat sat down") == pytest.approx(2 / 3)
    assert word_errors("my order number is one two three four", "my order is 1 2 3") == 2
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("", "hello there") == 2.0


def test_corpus_rate_weighs_sentences_by_their_length() -> None:
    pairs = [("one two three four five six seven eight", "1 2 3 4 5 6 7 8"), ("hello", "yellow")]
    assert corpus_word_error_rate(pairs) == pytest.approx(1 / 9)
