"""The campaign rules that need no server: calling hours in each number's time zone, retry backoff,
what a call record means for its contact, the contact list format, the do-not-call file, templates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sutradhar.campaigns.dnc import DncFile, read_numbers
from sutradhar.campaigns.hours import CallingHours, campaign_problems, zone
from sutradhar.campaigns.outcomes import CallView, outcome, retry_at
from sutradhar.campaigns.prompts import CallScript, render
from sutradhar.campaigns.spec import CampaignSpec, parse_contacts
from sutradhar.config import ConfigError
from tests.support.server import make_settings

IST = zone("Asia/Kolkata")
UTC = timezone.utc
DAY = CallingHours.parse("09:00-21:00")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def view(status: str | None, *history: str, turns: int = 0, ended: bool = False) -> CallView:
    return CallView(status, tuple(history) or ((status,) if status else ()), turns, ended)


# --- calling hours ---

def test_ist_window_is_open_from_nine_to_nine_local_time() -> None:
    assert not DAY.is_open(utc("2026-12-02T03:29:00"), IST)  # 08:59 IST
    assert DAY.is_open(utc("2026-12-02T03:30:00"), IST)  # 09:00 IST
    assert DAY.is_open(utc("2026-12-02T15:29:00"), IST)  # 20:59 IST
    assert not DAY.is_open(utc("2026-12-02T15:30:00"), IST)  # 21:00 IST: the end is excluded


def test_a_closed_window_opens_at_nine_the_same_morning_or_the_next() -> None:
    early = utc("2026-12-02T01:00:00")  # 06:30 IST
    assert DAY.next_open(early, IST) == utc("2026-12-02T03:30:00")
    late = utc("2026-12-02T16:00:00")  # 21:30 IST
    assert DAY.next_open(late, IST) == utc("2026-12-03T03:30:00")
    open_now = utc("2026-12-02T05:00:00")
    assert DAY.next_open(open_now, IST) == open_now


def test_each_number_is_called_in_its_own_time_zone() -> None:
    moment = utc("2026-12-02T04:30:00")  # 10:00 in India, 08:30 in Dubai, 23:30 in New York
    assert DAY.is_open(moment, IST)
    assert not DAY.is_open(moment, zone("Asia/Dubai"))
    assert DAY.next_open(moment, zone("Asia/Dubai")) == utc("2026-12-02T05:00:00")  # 09:00 Dubai
    assert DAY.next_open(moment, zone("America/New_York")) == utc("2026-12-02T14:00:00")  # 09:00 EST


def test_opening_follows_daylight_saving_time() -> None:
    # New York moves from EDT (UTC-4) to EST (UTC-5) on 1 November 2026: 09:00 is 13:00Z, then 14:00Z.
    new_york = zone("America/New_York")
    assert DAY.next_open(utc("2026-10-31T02:00:00"), new_york) == utc("2026-10-31T13:00:00")
    assert DAY.next_open(utc("2026-11-02T02:00:00"), new_york) == utc("2026-11-02T14:00:00")


def test_windows_across_midnight_and_the_whole_day() -> None:
    night = CallingHours.parse("20:00-02:00")
    assert night.is_open(utc("2026-12-02T19:30:00"), IST)  # 01:00 IST
    assert not night.is_open(utc("2026-12-02T21:00:00"), IST)  # 02:30 IST
    assert night.next_open(utc("2026-12-02T21:00:00"), IST) == utc("2026-12-03T14:30:00")  # 20:00 IST
    always = CallingHours.parse("00:00-24:00")
    assert all(always.is_open(utc("2026-12-02T00:00:00") + timedelta(minutes=m), IST) for m in range(0, 1440, 7))


@pytest.mark.parametrize("text", ["9-21", "09:00-09:00", "25:00-26:00", "09:00", "24:30-01:00"])
def test_bad_calling_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        CallingHours.parse(text)


def test_settings_refuse_bad_hours_and_unknown_zones() -> None:
    assert campaign_problems("09:00-21:00", "Asia/Kolkata") == []
    with pytest.raises(ConfigError) as err:
        make_settings(campaign_calling_hours="nine to nine", campaign_timezone="Mars/Olympus")
    assert "CAMPAIGN_CALLING_HOURS" in str(err.value) and "CAMPAIGN_TIMEZONE" in str(err.value)


# --- retries ---

def test_each_retry_waits_longer_until_the_attempts_run_out() -> None:
    now = utc("2026-12-02T05:00:00")
    assert retry_at(now, 1, 4, 600, 2.0) == now + timedelta(seconds=600)
    assert retry_at(now, 2, 4, 600, 2.0) == now + timedelta(seconds=1200)
    assert retry_at(now, 3, 4, 600, 2.0) == now + timedelta(seconds=2400)
    assert retry_at(now, 4, 4, 600, 2.0) is None


# --- what the call record says ---

@pytest.mark.parametrize(("carrier", "expected"), [("busy", "busy"), ("no-answer", "no_answer"),
                                                   ("failed", "failed"), ("canceled", "failed")])
def test_a_call_never_answered_is_retryable(carrier: str, expected: str) -> None:
    assert outcome("dialing", view(carrier, "initiated", "ringing", carrier)) == expected


def test_an_answered_call_is_answered_then_completed_and_never_retried() -> None:
    assert outcome("dialing", view("in-progress", "ringing", "in-progress")) == "answered"
    assert outcome("answered", view("in-progress", "ringing", "in-progress")) is None
    assert outcome("answered", view("completed", "ringing", "in-progress", "completed")) == "completed"
    # The session closed the record before the carrier's last callback: done too.
    assert outcome("answered", view("in-progress", "in-progress", ended=True)) == "completed"
    # A turn was stored though the answered callback was lost.
    assert outcome("dialing", view("ringing", turns=1, ended=True)) == "completed"


def test_a_ringing_call_waits_even_when_crash_recovery_closed_its_record() -> None:
    assert outcome("dialing", None) is None
    assert outcome("dialing", view("ringing", "initiated", "ringing")) is None
    assert outcome("dialing", view("ringing", "initiated", "ringing", ended=True)) is None


# --- the contact list ---

CSV = """number,name,due_amount,appointment_time,language,tz
+91 98765-43210,Asha,1200,Friday 11 am,hi-IN,
+971501234567,Omar,900,,en-IN,Asia/Dubai
"""


def test_csv_rows_become_contacts_with_their_variables() -> None:
    first, second = parse_contacts(CSV, "csv")
    assert first.number == "+919876543210" and first.language == "hi-IN" and first.timezone is None
    assert first.variables == {"name": "Asha", "due_amount": "1200", "appointment_time": "Friday 11 am"}
    assert second.timezone == "Asia/Dubai" and second.variables["appointment_time"] == ""


def test_json_lists_take_the_same_rows() -> None:
    (contact,) = parse_contacts('{"contacts": [{"phone": "+14155550100", "name": "Lee", "due_amount": 5}]}',
                                "json")
    assert contact.number == "+14155550100" and contact.variables == {"name": "Lee", "due_amount": "5"}


def test_every_bad_row_is_named() -> None:
    with pytest.raises(ValueError) as err:
        parse_contacts("number,language,timezone\n12345,,\n+919876543210,fr-FR,\n+919876543211,,Nowhere/X\n", "csv")
    text = str(err.value)
    assert "row 1: number" in text and "row 2: language" in text and "row 3: timezone" in text


def test_a_number_listed_twice_is_refused() -> None:
    contacts = parse_contacts("number\n+919876543210\n+91 98765 43210\n", "csv")
    with pytest.raises(ValueError, match="also contact 1"):
        CampaignSpec(contacts=contacts)


# --- do-not-call ---

def test_the_do_not_call_file_is_normalised_and_reread_when_it_changes(tmp_path) -> None:
    assert read_numbers("+91 98765 43210  # asked on 1 Dec\n\nnot a number\n") == {"+919876543210"}
    path = tmp_path / "dnc.txt"
    path.write_text("+919876543210\n")
    dnc = DncFile(str(path))
    assert dnc.numbers() == {"+919876543210"}
    path.write_text("+919876543210\n+14155550100\n")
    import os

    os.utime(path, (1, 1))  # a different modification time, whatever the clock's resolution
    assert dnc.numbers() == {"+919876543210", "+14155550100"}
    assert DncFile("").numbers() == frozenset()


# --- templates ---

def test_templates_fill_the_rows_variables_and_leave_unknown_ones() -> None:
    text = "Namaste {name}, aapka {due_amount} rupaye baaki hai. {missing} {name.__class__}"
    assert render(text, {"name": "Asha", "due_amount": "1200"}) == (
        "Namaste Asha, aapka 1200 rupaye baaki hai. {missing} {name.__class__}")
    script = CallScript({"name": "Asha"}, greetings={"hi-IN": "Namaste {name}"})
    assert script.personalise({"hi-IN": "agent", "en-IN": "Hello {name}"}, script.greetings) == {
        "hi-IN": "Namaste Asha", "en-IN": "Hello Asha"}
