"""The local LLM's answers: script first, the tuned prompt, and the guard on what the model writes
(a fake model stands in for llama.cpp, so these run without the GGUF)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from threading import Event

import pytest

from sutradhar.engines.base import Message
from sutradhar.engines.local.llama import LocalLLM
from sutradhar.engines.local.llm_prompt import LocalPrompt
from sutradhar.engines.local.reply_guard import echoes
from sutradhar.engines.local.responder import Script
from sutradhar.testing.questions import load_questions

SCRIPT = Script.load()
PROMPT = LocalPrompt.load(SCRIPT)
ISSUE_14_HEARD = "I would like to cast my stand if I'm ordered please."


class FakeModelLLM(LocalLLM):
    """LocalLLM whose decode thread yields fixed deltas instead of running llama.cpp."""

    deltas: tuple[str, ...] = ()
    asked: list[list[dict[str, str]]]

    def _generate(self, messages: list[dict[str, str]], stop: Event) -> Iterator[str]:
        self.asked.append(messages)
        for delta in self.deltas:
            if stop.is_set():
                return
            yield delta


def fake(tmp_path, *deltas: str) -> FakeModelLLM:
    llm = FakeModelLLM(model_path=tmp_path / "absent.gguf", script=SCRIPT)
    llm.deltas, llm.asked = deltas, []
    return llm


async def reply(llm: LocalLLM, heard: str, history: tuple[Message, ...] = ()) -> str:
    return "".join([d async for d in llm.stream([*history, Message("user", heard)], "en-IN")])


@pytest.mark.parametrize("said", [
    "Absolutely! I'd be happy to cast my stand if I'm ordered.",  # issue 14, word for word
    "I would like to cast my stand if I'm ordered please.",
])
def test_saying_the_callers_words_back_is_an_echo(said: str) -> None:
    assert echoes(said, ISSUE_14_HEARD)


@pytest.mark.parametrize(("said", "heard"), [
    ("Our opening hours on Sunday are none: we are closed.", "What are your opening hours on Sunday"),
    ("Yes, we accept cash on delivery.", "Do you accept cash"),
])
def test_answering_in_the_callers_words_is_not_an_echo(said: str, heard: str) -> None:
    assert not echoes(said, heard)


@pytest.mark.parametrize(("deltas", "reason"), [
    (("Absolutely! I'd be happy to cast my stand", " if I'm ordered."), "echo"),
    (("I'm ready to cast", " my stand!"), "off_subject"),
    (("Call our shop on 555-123-4567", "."), "invented_number"),
])
async def test_a_bad_first_clause_becomes_the_honest_fallback(tmp_path, deltas, reason) -> None:
    heard = ISSUE_14_HEARD if reason != "invented_number" else "What is the support number"
    assert PROMPT.guard.verdict("".join(deltas), heard) == reason
    assert await reply(fake(tmp_path, *deltas), heard) == PROMPT.fallback


def test_an_echo_across_clauses_is_an_echo() -> None:
    heard = "I would like to check the status of my order please"
    before = "Sure, I would like to check the status "
    assert PROMPT.guard.verdict("of my order please.", heard, before=before) == "echo"


async def test_a_later_echo_ends_the_reply_after_what_was_fine(tmp_path) -> None:
    llm = fake(tmp_path, "Yes, we take card, UPI and cash on delivery. ",
               "You said do you take cards and cash please.")
    assert await reply(llm, "Do you take cards and cash please") == (
        "Yes, we take card, UPI and cash on delivery. ")


async def test_a_good_answer_streams_clause_by_clause(tmp_path) -> None:
    llm = fake(tmp_path, "We are on ", "MG Road", " in Pune.")
    clauses = [d async for d in llm.stream([Message("user", "Where is your shop")], "en-IN")]
    assert "".join(clauses) == "We are on MG Road in Pune."


async def test_the_script_answers_what_it_knows_and_the_model_is_not_asked(tmp_path) -> None:
    llm = fake(tmp_path, "nonsense from the model")
    assert await reply(llm, "What are your opening hours on Sunday") == SCRIPT.answer("hours", "en-IN")[1]
    assert llm.asked == []


async def test_the_model_sees_the_tuned_prompt_and_only_the_last_turns(tmp_path) -> None:
    llm = fake(tmp_path, "Yes, we take UPI.")
    old = (Message("system", "You are a helpful assistant."), Message("user", "first question"),
           Message("assistant", "first answer"))
    await reply(llm, "Can I pay with UPI", old)
    [wire] = llm.asked
    assert wire[0] == {"role": "system", "content": PROMPT.system}
    assert "closed on Sunday" in PROMPT.system  # the responder's facts, written once
    assert wire[-1] == {"role": "user", "content": "Can I pay with UPI"}
    assert {"role": "user", "content": "first question"} not in wire  # HISTORY_TURNS: 1


def test_the_question_set_scores_facts_as_words() -> None:
    where = next(q for q in load_questions("call") if q.key == "where")
    assert where.answered_by("Order 4567 has been shipped and should reach you in 2 days.")
    assert where.missing("Order 14567 has been shipped, arriving in two days.") == ["4567"]
    assert len(load_questions("call")) == 10


async def test_the_models_own_fallback_opening_is_said_whole_at_once(tmp_path) -> None:
    llm = fake(tmp_path, "I can help with orders, hours ", "and appointments.", " More words never decoded.")
    deltas = [d async for d in llm.stream([Message("user", "Tell me a joke")], "en-IN")]
    assert deltas == [PROMPT.fallback]


async def test_three_words_of_the_fallback_line_are_enough_to_say_it(tmp_path) -> None:
    # Token by token, as llama.cpp streams it; the model "stalls" after its third word until it
    # is told to stop: the line must be said without its fourth.
    class Stalling(FakeModelLLM):
        def _generate(self, messages: list[dict[str, str]], stop: Event) -> Iterator[str]:
            yield from ("I", " can", " help")
            stop.wait(30)
            yield from (" with", " orders", ",")

    llm = Stalling(model_path=tmp_path / "absent.gguf", script=SCRIPT)
    async with asyncio.timeout(10):  # a stop at the third word returns in milliseconds
        deltas = [d async for d in llm.stream([Message("user", "Tell me a joke")], "en-IN")]
    assert deltas == [PROMPT.fallback]


@pytest.mark.parametrize(("opening", "says_it"), [
    ("I can", False),  # two words: an answer may still open like this
    ("I can help", True),
    ("I can help with orders, hours ", True),
    ("I can help with your refund", False),  # read past the third word in one delta, and not the line
    ("Yes, I can help", False),
    ("I can't help", False),
])
def test_the_fallback_opening_is_its_first_three_words(opening: str, says_it: bool) -> None:
    from sutradhar.engines.local.llama import opens_fallback

    assert opens_fallback(opening, PROMPT.fallback) is says_it


async def test_the_ten_phone_questions_are_answered_by_the_script_and_the_demo_orders(tmp_path) -> None:
    """The data agree: responder.yaml, the demo order backend and offline_questions.yaml's facts
    (the call as `bench answers` asks it, heard without STT errors; no model is asked)."""
    from bench.answers import _ask
    from sutradhar.agents.demo_orders import DemoOrders, order_status_tool

    llm = fake(tmp_path, "nonsense from the model")
    tool = order_status_tool(DemoOrders(tmp_path / "orders.db"))
    history: list[Message] = []
    missing = {}
    for q in load_questions("call"):
        row = await _ask(llm, tool, history, q.text)
        history += [Message("user", q.text), Message("assistant", row["reply"])]
        if q.missing(row["reply"]):
            missing[q.key] = (row["reply"], q.missing(row["reply"]))
    assert missing == {}
    assert llm.asked == []
