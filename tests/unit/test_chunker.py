from hypothesis import given, settings
from hypothesis import strategies as st

from sutradhar.text.sentences import SentenceChunker


def chunk_stream(deltas):
    chunker = SentenceChunker()
    out = []
    for delta in deltas:
        out.extend(chunker.push(delta))
    return out, chunker.flush()


def test_first_sentence_released_before_the_stream_ends():
    chunker = SentenceChunker()
    assert chunker.push("Our office opens at nine") == []
    assert chunker.push(". We close") == ["Our office opens at nine. "]
    assert chunker.push(" at five.") == []  # the last full stop could still be "5.30"
    assert chunker.flush() == ["We close at five."]


def test_numbers_abbreviations_and_initials_do_not_end_sentences():
    text = "Dr. Rao said the rate is 3.5 percent, and A. P. J. Kalam agreed. Next question?"
    done, rest = chunk_stream(list(text))
    chunks = done + rest
    # The long first clause goes out at its comma; the rest waits for a real sentence end.
    assert chunks[:2] == ["Dr. Rao said the rate is 3.5 percent, ", "and A. P. J. Kalam agreed. "]
    assert "".join(chunks) == text


def test_danda_ends_a_hindi_sentence():
    text = "आपका ऑर्डर कल पहुँच जाएगा। क्या और कुछ?"
    done, rest = chunk_stream([text[:20], text[20:]])
    assert (done + rest)[0] == "आपका ऑर्डर कल पहुँच जाएगा। "


def test_question_and_exclamation_marks():
    done, rest = chunk_stream(["Really? ", "Yes, absolutely right! ", "Great."])
    assert done + rest == ["Really? Yes, absolutely right! ", "Great."]


def test_long_first_clause_is_cut_at_a_comma():
    chunker = SentenceChunker()
    out = chunker.push("Thank you for calling the support line of our bank, I can help with cards ")
    assert out == ["Thank you for calling the support line of our bank, "]


def test_very_long_text_without_punctuation_is_cut_at_a_space():
    chunker = SentenceChunker(max_chars=50)
    out = chunker.push("word " * 30)
    assert out and all(len(c) <= 51 for c in out)


def test_a_period_at_the_end_of_a_delta_waits_for_the_next_character():
    chunker = SentenceChunker()
    assert chunker.push("The price is 3.") == []
    assert chunker.push("5 rupees per minute. Ok") == ["The price is 3.5 rupees per minute. "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("ab .,?!।3\n") + ["Dr.", "हिं", "e.g."]), max_size=150).map("".join),
       st.lists(st.integers(min_value=1, max_value=15), max_size=60))
def test_no_text_is_lost_or_duplicated(text, cuts):
    deltas, i = [], 0
    for size in cuts:
        if i >= len(text):
            break
        deltas.append(text[i:i + size])
        i += size
    deltas.append(text[i:])
    done, rest = chunk_stream(deltas)
    assert "".join(done + rest) == text
    assert all(chunk for chunk in done + rest)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_round_trips(text):
    done, rest = chunk_stream([text])
    assert "".join(done + rest) == text


def test_a_first_clause_without_punctuation_goes_out_after_first_max_words():
    chunker = SentenceChunker(first_max_words=6)
    assert chunker.push("We are open from Monday") == []
    assert chunker.push(" to Saturday and from nine") == ["We are open from Monday to "]
    # Later chunks wait for a sentence end or a long clause's comma, as before.
    assert chunker.push(" in the morning to six in the evening") == []
    assert chunker.flush() == ["Saturday and from nine in the morning to six in the evening"]


def test_a_first_chunk_cut_after_first_max_words_ends_at_its_last_comma():
    chunker = SentenceChunker(first_max_words=6)
    assert chunker.push("Sorry, I can help with orders, hours and") == ["Sorry, I can help with orders, "]
    # A comma too early for a first chunk (first_min_chars) leaves the cut after the words.
    chunker = SentenceChunker(first_max_words=6)
    assert chunker.push("Yes, we take UPI and cash on") == ["Yes, we take UPI and cash "]


def test_first_max_words_zero_keeps_the_whole_first_sentence():
    chunker = SentenceChunker(first_max_words=0)
    assert chunker.push("We are open from Monday to Saturday and from nine in the morning ") == []


def test_the_default_chunker_keeps_a_long_first_sentence_whole():
    # Only an LLM that asks for it (the small local model: Provider.first_chunk_words) has its first
    # chunk cut after N words; cloud replies go to TTS at sentence ends, as prosody prefers.
    chunker = SentenceChunker()
    text = "This reply is long enough to keep the line busy for a good while and then some more"
    assert chunker.push(text) == [] and chunker.flush() == [text]
