"""The semantic end of turn: complete turns end at the short pause, unfinished ones wait, in all
four launch languages; backchannels are recognised as such."""

from __future__ import annotations

import pytest

from sutradhar.pipeline.turn_policy import EndOfTurn

POLICY = EndOfTurn(pause_ms=200, max_wait_ms=1500, silence_ms=600)

COMPLETE = [
    ("en-IN", "What are your opening hours?"),
    ("en-IN", "I want to check the status of my order."),
    ("en-IN", "yes"),
    ("en-IN", "My number is 98450 12345"),
    ("hi-IN", "मेरा ऑर्डर कहाँ है?"),
    ("hi-IN", "haan"),
    ("hi-IN", "mujhe refund chahiye"),
    ("te-IN", "నా ఆర్డర్ ఎక్కడ ఉంది?"),
    ("te-IN", "avunu"),
    ("gu-IN", "મારો ઓર્ડર ક્યાં છે?"),
    ("gu-IN", "હા"),
]
UNFINISHED = [
    ("en-IN", "I want to check my order and"),
    ("en-IN", "my number is"),
    ("en-IN", "I would like to"),
    ("hi-IN", "मेरा ऑर्डर आया नहीं और"),
    ("hi-IN", "mera number hai"),
    ("hi-IN", "maine order kiya lekin"),
    ("te-IN", "నా ఆర్డర్ రాలేదు కానీ"),
    ("te-IN", "naa number"),
    ("gu-IN", "મારો ઓર્ડર આવ્યો નથી અને"),
    ("gu-IN", "maro number"),
]


@pytest.mark.parametrize(("language", "text"), COMPLETE)
def test_a_complete_turn_is_answered_at_the_short_pause(language, text):
    assert POLICY.is_complete(text, language)
    assert POLICY.wait_ms(text, language) == 200


@pytest.mark.parametrize(("language", "text"), UNFINISHED)
def test_an_unfinished_turn_waits_for_the_caller_to_go_on(language, text):
    assert not POLICY.is_complete(text, language)
    assert POLICY.wait_ms(text, language) == 1500


@pytest.mark.parametrize(("language", "text"), [
    ("en-IN", "My number is 98450,"), ("en-IN", "my number is nine eight four five"),
    ("hi-IN", "मेरा नंबर है 9845"), ("te-IN", "నా నంబర్ నాలుగు ఐదు"), ("gu-IN", "મારો નંબર ચાર પાંચ")])
def test_digits_that_may_still_be_read_out_wait_a_little_longer(language, text):
    assert not POLICY.is_complete(text, language)
    assert POLICY.wait_ms(text, language) == POLICY.number_wait_ms == 800


def test_with_no_transcript_the_plain_silence_window_applies():
    assert POLICY.wait_ms(None, "en-IN") == 600
    assert POLICY.wait_ms("  ", "hi-IN") == 600


@pytest.mark.parametrize(("language", "text"), [
    ("en-IN", "hmm"), ("en-IN", "okay"), ("en-IN", "uh-huh"), ("hi-IN", "haan ji"),
    ("hi-IN", "ठीक है"), ("hi-IN", "achha"), ("te-IN", "avunu"), ("te-IN", "సరే"),
    ("gu-IN", "barabar"), ("gu-IN", "સારું")])
def test_backchannels_in_every_language(language, text):
    assert POLICY.is_backchannel(text, language)


@pytest.mark.parametrize(("language", "text"), [
    ("en-IN", "wait, stop, I have a question"), ("hi-IN", "nahi mujhe kuch aur chahiye"),
    ("en-IN", "okay but what about the refund")])
def test_real_interruptions_are_not_backchannels(language, text):
    assert not POLICY.is_backchannel(text, language)


@pytest.mark.parametrize(("language", "text"), [
    ("hi-IN", "मेरा बैलेंस कितना है"), ("hi-IN", "mera order kal aaya tha"), ("hi-IN", "mujhe bhi"),
    ("gu-IN", "મારો ઓર્ડર આવ્યો છે"), ("gu-IN", "maro order aavyo che"), ("te-IN", "నాకు కూడా")])
def test_verb_final_sentences_are_complete(language, text):
    """Hindi and Gujarati put the verb (है, था, છે) last: it ends a sentence, it does not continue it."""
    assert POLICY.is_complete(text, language)
