"""Order numbers read out digit by digit in English, Hindi, Telugu and Gujarati."""

from __future__ import annotations

import pytest

from sutradhar.text.spoken_numbers import spoken_number


@pytest.mark.parametrize("text", [
    "where is order 4567?",
    "where is order 4 5 6 7",
    "my order number is four five six seven",
    "मेरा ऑर्डर चार पाँच छह सात कहाँ है",
    "mera order char paanch chhe saat kahan hai",
    "ऑर्डर ४५६७",
    "నా ఆర్డర్ నాలుగు ఐదు ఆరు ఏడు ఎక్కడ ఉంది",
    "મારો ઓર્ડર ચાર પાંચ છ સાત ક્યાં છે",
    "four 5 six 7",
])
def test_reads_the_number_in_every_language(text: str) -> None:
    assert spoken_number(text) == "4567"


@pytest.mark.parametrize("text", ["मुझे एक ऑर्डर दो", "give me one order", "hello", ""])
def test_one_or_two_number_words_are_not_an_order_number(text: str) -> None:
    assert spoken_number(text) is None


def test_the_longest_run_wins() -> None:
    assert spoken_number("call 12 about order 9 8 7 6 5") == "98765"
