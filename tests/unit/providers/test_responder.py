"""The scripted responder matches keywords in each language and answers in the call's language."""

from __future__ import annotations

import json

import pytest

from sutradhar.engines.base import LanguageNotSupported, Message
from sutradhar.engines.local.responder import Script, ScriptedResponder
from sutradhar.text.keywords import keyword_matches

SCRIPT = Script.load()

CASES = [
    ("en-IN", "hello there", "greeting"),
    ("en-IN", "what time do you open tomorrow", "hours"),
    ("en-IN", "when will my order arrive", "order_status"),
    ("en-IN", "ok thank you, bye", "goodbye"),
    ("en-IN", "tell me a joke about cricket", "fallback"),
    ("en-IN", "I want a refund for my last order", "refund"),
    ("en-IN", "Can I book an appointment for Monday morning", "book_appointment"),
    ("en-IN", "I need to cancel my appointment", "cancel_appointment"),
    ("en-IN", "What are your opening hours on Sunday", "hours"),
    ("hi-IN", "मुझे रिफंड चाहिए", "refund"),
    ("hi-IN", "मेरा अपॉइंटमेंट रद्द करना है", "cancel_appointment"),
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


async def test_streams_sentence_by_sentence_in_the_callers_language() -> None:
    responder = ScriptedResponder()
    assert responder.name == "responder"
    assert responder.languages == frozenset({"en-IN", "hi-IN", "te-IN", "gu-IN"})
    deltas = [d async for d in responder.stream([Message("user", "hello")], "hi-IN")]
    assert deltas[0] == "नमस्ते! मैं आपको हमारे खुलने का समय या आपके ऑर्डर की स्थिति बता सकता हूँ। "
    assert "".join(deltas) == SCRIPT.answer("hello", "hi-IN")[1]


async def test_a_long_first_sentence_is_never_cut_mid_phrase_by_the_orchestrators_chunker() -> None:
    from sutradhar.text.sentences import SentenceChunker

    deltas = [d async for d in ScriptedResponder().stream([Message("user", "hello")], "en-IN")]
    chunker = SentenceChunker()  # as the orchestrator cuts: the first after 12 words
    chunks = [c for d in deltas for c in chunker.push(d)] + chunker.flush()
    assert chunks[0] == "Hello! I can tell you our opening hours or the status of your order. "


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


# --- tools: the order intent calls order_status with the number the caller read out ---

ORDER_TOOL = [{"type": "function", "function": {"name": "order_status", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}}}}]
SHIPPED = '{"found": true, "order_id": "4567", "status": "shipped", "eta_days": 2}'


async def _deltas(messages: list[Message], language: str, tools: list | None = ORDER_TOOL) -> list:
    return [d async for d in ScriptedResponder().stream(messages, language, tools)]


@pytest.mark.parametrize(("language", "heard", "answer"), [
    ("en-IN", "where is order four five six seven?", "Order 4567 has been shipped and should reach you in 2 days."),
    ("hi-IN", "मेरा ऑर्डर चार पाँच छह सात कहाँ है", "ऑर्डर 4567 भेज दिया गया है और 2 दिन में आप तक पहुँच जाना चाहिए।"),
    ("te-IN", "నా ఆర్డర్ 4 5 6 7 ఎక్కడ ఉంది", "ఆర్డర్ 4567 పంపబడింది, 2 రోజుల్లో మీకు చేరుతుంది."),
    ("gu-IN", "મારો ઓર્ડર ચાર પાંચ છ સાત ક્યાં છે",
     "ઓર્ડર 4567 મોકલી દેવામાં આવ્યો છે અને 2 દિવસમાં તમારા સુધી પહોંચી જશે."),
])
async def test_order_question_calls_the_tool_and_answers_from_its_result(language: str, heard: str,
                                                                          answer: str) -> None:
    from sutradhar.engines.base import ToolCall

    [call] = await _deltas([Message("user", heard)], language)
    assert isinstance(call, ToolCall) and call.name == "order_status"
    assert call.arguments == '{"order_id": "4567"}'
    messages = [Message("user", heard), Message("assistant", "", (call,)),
                Message("tool", SHIPPED, tool_call_id=call.id)]
    assert "".join(await _deltas(messages, language)) == answer


async def test_without_a_number_it_asks_and_the_next_turn_fills_the_slot() -> None:
    from sutradhar.engines.base import ToolCall

    asked = "".join(await _deltas([Message("user", "मेरा ऑर्डर कहाँ है")], "hi-IN"))
    assert asked == "ज़रूर। आपका ऑर्डर नंबर क्या है?"
    history = [Message("user", "मेरा ऑर्डर कहाँ है"), Message("assistant", asked),
               Message("user", "चार पाँच छह सात")]
    [call] = await _deltas(history, "hi-IN")
    assert isinstance(call, ToolCall) and call.arguments == '{"order_id": "4567"}'


async def test_without_the_tool_offered_the_old_reply_stands() -> None:
    reply = "".join(await _deltas([Message("user", "where is order 4567")], "en-IN", tools=None))
    assert reply == SCRIPT.answer("order", "en-IN")[1]


async def test_a_failed_tool_is_a_polite_line_in_the_calls_language() -> None:
    from sutradhar.engines.base import ToolCall
    from sutradhar.text.languages import LANGUAGES

    call = ToolCall("c1", "order_status", '{"order_id": "4567"}')
    messages = [Message("user", "order 4567"), Message("assistant", "", (call,)),
                Message("tool", '{"error": "timeout"}', tool_call_id="c1")]
    assert "".join(await _deltas(messages, "te-IN")) == LANGUAGES["te-IN"].tool_failed


async def test_the_local_llm_plans_order_tools_with_the_script_without_touching_the_model(tmp_path) -> None:
    from sutradhar.engines.base import ToolCall
    from sutradhar.engines.local.llama import LocalLLM

    llm = LocalLLM(model_path=tmp_path / "absent.gguf", script=SCRIPT)  # generating would fail
    assert llm.supports_tools
    [call] = [d async for d in llm.stream([Message("user", "where is order four five six seven")],
                                          "en-IN", ORDER_TOOL)]
    assert isinstance(call, ToolCall) and call.arguments == '{"order_id": "4567"}'
    answered = [Message("user", "where is order 4567"), Message("assistant", "", (call,)),
                Message("tool", SHIPPED, tool_call_id=call.id)]
    assert "".join([d async for d in llm.stream(answered, "en-IN", ORDER_TOOL)]) == (
        "Order 4567 has been shipped and should reach you in 2 days.")
    asked = [d async for d in llm.stream([Message("user", "where is my order")], "en-IN", ORDER_TOOL)]
    assert "".join(asked) == "Sure. What is your order number?"
    assert not LocalLLM(model_path=tmp_path / "absent.gguf").supports_tools


# --- with collect_digits offered, the question for the number is asked on the keypad ---

KEYPAD_TOOLS = [*ORDER_TOOL, {"type": "function", "function": {"name": "collect_digits", "parameters": {
    "type": "object", "properties": {"prompt": {"type": "string"}}}}}]


@pytest.mark.parametrize(("result", "looked_up"), [
    ('{"ok": true, "digits": "4567", "ended_by": "finish_key"}', "4567"),
    ('{"ok": true, "digits": "", "ended_by": "speech", "said": "चार पाँच छह सात"}', "4567"),
])
async def test_without_a_number_it_collects_one_on_the_keypad(result: str, looked_up: str) -> None:
    from sutradhar.engines.base import ToolCall

    heard = [Message("user", "मेरा ऑर्डर कहाँ है")]
    [collect] = await _deltas(heard, "hi-IN", KEYPAD_TOOLS)
    assert isinstance(collect, ToolCall) and collect.name == "collect_digits"
    assert json.loads(collect.arguments) == {"prompt": "ज़रूर। आपका ऑर्डर नंबर क्या है?"}
    keyed = [*heard, Message("assistant", "", (collect,)), Message("tool", result, tool_call_id=collect.id)]
    [lookup] = await _deltas(keyed, "hi-IN", KEYPAD_TOOLS)
    assert isinstance(lookup, ToolCall) and lookup.name == "order_status"
    assert json.loads(lookup.arguments) == {"order_id": looked_up}


async def test_a_collection_that_got_no_number_asks_aloud() -> None:
    from sutradhar.engines.base import ToolCall

    collect = ToolCall("c1", "collect_digits", json.dumps({"prompt": "Sure. What is your order number?"}))
    messages = [Message("user", "where is my order"), Message("assistant", "", (collect,)),
                Message("tool", '{"ok": true, "digits": "", "ended_by": "timeout"}', tool_call_id="c1")]
    assert "".join(await _deltas(messages, "en-IN", KEYPAD_TOOLS)) == "Sure. What is your order number?"
