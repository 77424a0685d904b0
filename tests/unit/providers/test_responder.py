"""The scripted responder matches keywords in each language and answers in the call's language."""

from __future__ import annotations

import pytest

from sutradhar.engines.base import LanguageNotSupported, Message
from sutradhar.engines.local.responder import Script, ScriptedResponder, keyword_matches

SCRIPT = Script.load()

CASES = [
    ("en-IN", "hello there", "greeting"),
    ("en-IN", "what time do you open tomorrow", "hours"),
    ("en-IN", "when will my order arrive", "order_status"),
    ("en-IN", "ok thank you, bye", "goodbye"),
    ("en-IN", "tell me a joke about cricket", "fallback"),
    ("hi-IN", "नमस्ते", "greeting"),
    ("hi-IN", "आप कब खुलते हैं", "hours"),
    ("hi-IN", "मेरा ऑर्डर कहाँ है", "order_status"),
    ("hi-IN", "मेरा order kahan hai", "order_status"),
    ("hi-IN", "aap kab khulte ho", "hours"),
    ("hi-IN", "धन्यवाद", "goodbye"),
    ("hi-IN", "मौसम कैसा है", "fallback"),
    ("te-IN", "హలో", "greeting"),
    ("te-IN", "మీరు ఎన్ని గంటలకు తెరిచి ఉంటారు, సమయం ఏమిటి", "hours"),
    ("te-IN", "నా ఆర్డర్ ఎక్కడ ఉంది", "order_status"),
    ("te-IN", "ధన్యవాదాలు", "goodbye"),
    ("gu-IN", "નમસ્તે", "greeting"),
    ("gu-IN", "તમે ક્યારે ખુલો છો", "hours"),
    ("gu-IN", "મારો ઓર્ડર ક્યાં છે", "order_status"),
    ("gu-IN", "આભાર, આવજો", "goodbye"),
]


@pytest.mark.parametrize(("language", "heard", "intent"), CASES)
def test_matches_intent_in_each_language(language: str, heard: str, intent: str) -> None:
    name, reply = SCRIPT.answer(heard, language)
    assert name == intent
    assert reply  # in the call's language
    expected = SCRIPT.fallback[language] if intent == "fallback" else next(
        i.reply[language] for i in SCRIPT.intents if i.name == intent)
    assert reply == expected


def test_keyword_in_another_language_still_matches_but_reply_follows_the_call() -> None:
    name, reply = SCRIPT.answer("order", "te-IN")
    assert name == "order_status" and "ఆర్డర్" in reply


def test_latin_keywords_match_whole_words_only() -> None:
    assert keyword_matches("hi", "hi there")
    assert not keyword_matches("hi", "this is it")
    assert keyword_matches("खुल", "आप कब खुलते हैं")


async def test_streams_word_by_word_in_the_callers_language() -> None:
    responder = ScriptedResponder()
    assert responder.name == "responder"
    assert responder.languages == frozenset({"en-IN", "hi-IN", "te-IN", "gu-IN"})
    deltas = [d async for d in responder.stream([Message("user", "मेरा ऑर्डर कहाँ है")], "hi-IN")]
    assert len(deltas) > 3 and "".join(deltas).startswith("आपका ऑर्डर")


async def test_unknown_language_is_refused() -> None:
    with pytest.raises(LanguageNotSupported):
        async for _ in ScriptedResponder().stream([Message("user", "hello")], "ta-IN"):
            pass


def test_custom_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "r.yaml"
    path.write_text("intents:\n  - name: price\n    keywords: {en-IN: [price]}\n"
                    "    reply: {en-IN: It costs ten rupees.}\nfallback: {en-IN: \"Pardon?\"}\n")
    responder = ScriptedResponder(path=path)
    assert responder.languages == frozenset({"en-IN"})
    assert responder.script.answer("what is the price", "en-IN") == ("price", "It costs ten rupees.")
