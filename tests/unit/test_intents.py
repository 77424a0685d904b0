import pytest

from sutradhar.pipeline.intents import detect_intent


@pytest.mark.parametrize("text,kind", [
    ("Okay bye", "end_call"), ("please end the call", "end_call"), ("ठीक है, अलविदा", "end_call"),
    ("సరే, బై", "end_call"), ("આવજો", "end_call"), ("bas itna hi, dhanyavad", "end_call"),
    ("I want to talk to a human", "human"), ("मुझे किसी व्यक्ति से बात करनी है", "human"),
    ("నేను మనిషితో మాట్లాడాలి", "human"), ("મારે માણસ સાથે વાત કરવી છે", "human"),
    ("can you repeat that", "repeat"), ("फिर से बोलिए", "repeat"), ("మళ్ళీ చెప్పండి", "repeat"),
    ("ફરીથી કહો", "repeat"),
])
def test_action_intents_in_four_languages(text, kind):
    intent = detect_intent(text)
    assert intent is not None and intent.kind == kind


@pytest.mark.parametrize("text,target", [
    ("please speak in Hindi", "hi-IN"), ("Telugu", "te-IN"), ("हिंदी में बात करो", "hi-IN"),
    ("తెలుగులో మాట్లాడండి", "te-IN"), ("ગુજરાતીમાં બોલો", "gu-IN"), ("English please", "en-IN"),
    ("gujarati mein baat karo", "gu-IN"),
])
def test_switch_language_intent(text, target):
    intent = detect_intent(text)
    assert intent is not None and intent.kind == "switch_language" and intent.language == target


@pytest.mark.parametrize("text", [
    "what are your opening hours", "where is my order", "I placed an order by phone yesterday and the agenda changed",
    "मेरा ऑर्डर कहाँ है", "", "can you repeat the order number from my last bill for the account please",
])
def test_everything_else_goes_to_the_llm(text):
    assert detect_intent(text) is None


def test_disabled_language_is_not_a_switch_target():
    assert detect_intent("speak in Telugu", ("en-IN", "hi-IN")) is None
