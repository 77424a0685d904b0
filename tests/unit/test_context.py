from sutradhar.pipeline.context import ContextManager


def test_window_trimming_keeps_the_system_prompt():
    ctx = ContextManager(max_history=4, system_prompt="You are a bank agent.")
    for i in range(10):
        ctx.add_turn("user", f"question {i}", "en-IN")
        ctx.add_turn("assistant", f"answer {i}", "en-IN")
    messages = ctx.get_context()
    assert messages[0].role == "system" and messages[0].content.startswith("You are a bank agent.")
    assert [m.content for m in messages[1:]] == ["question 8", "answer 8", "question 9", "answer 9"]
    assert ctx.get_turn_count() == 20


def test_character_budget_drops_oldest_but_never_the_newest_message():
    ctx = ContextManager(max_history=50, max_chars=30, system_prompt="sys")
    ctx.add_turn("user", "a" * 20)
    ctx.add_turn("assistant", "b" * 20)
    ctx.add_turn("user", "c" * 50)
    assert [m.content for m in ctx.get_context()] == ["sys", "c" * 50]


def test_system_prompt_override_and_language_instruction_and_metadata():
    ctx = ContextManager(system_prompt="default", language_instruction="Always reply in Hindi.")
    ctx.set_metadata(name="Asha")
    ctx.session["transport"] = "twilio"
    system = ctx.get_context("custom", include_metadata=True)[0].content
    assert "custom" in system and "Always reply in Hindi." in system and "name: Asha" in system
    assert "default" not in system
    assert "Asha" not in ctx.get_context()[0].content


def test_interruption_keeps_only_what_was_heard():
    ctx = ContextManager()
    ctx.add_turn("user", "tell me about the plans", turn_id=3)
    ctx.add_turn("assistant", "We have three plans. The basic plan costs 100. The pro plan costs 500.", turn_id=3)
    ctx.record_heard(3, "We have three plans.")
    last = ctx.get_context()[-1]
    assert last.role == "assistant"
    assert last.content == "We have three plans. [interrupted by the caller]"


def test_interruption_before_any_audio_drops_the_assistant_message():
    ctx = ContextManager()
    ctx.add_turn("user", "hello", turn_id=1)
    ctx.add_turn("assistant", "Hello there, how can I help?", turn_id=1)
    ctx.record_heard(1, "")
    assert [t.role for t in ctx.history] == ["user"]


def test_clear_history():
    ctx = ContextManager(system_prompt="s")
    ctx.add_turn("user", "x")
    ctx.clear_history()
    assert [m.role for m in ctx.get_context()] == ["system"]
