"""A campaign as the admin API takes it, and the contact lists it is made from (CSV or JSON).

    number,name,due_amount,appointment_time,language,timezone
    +919876543210,Asha,1200,Friday 11 am,hi-IN,
    +971501234567,Omar,900,,en-IN,Asia/Dubai

`number` (or `phone`, `to`) is required and normalised to E.164; `language` and `timezone` (or `tz`)
are optional per row; every other column is a variable for the prompts ({name}, {due_amount}).
JSON: a list of such objects, or {"contacts": [...]}.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sutradhar.agents.spec import LanguagePrompt
from sutradhar.campaigns.hours import CallingHours, zone
from sutradhar.telephony.numbers import e164
from sutradhar.text.languages import LANGUAGES

MAX_CONTACTS = 100_000
NUMBER_KEYS = ("number", "phone", "to")
TIMEZONE_KEYS = ("timezone", "tz")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


class ContactSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(max_length=32)
    language: str | None = Field(None, max_length=16)
    timezone: str | None = Field(None, max_length=64)
    variables: dict[str, str] = Field(default_factory=dict, max_length=32)

    @field_validator("number")
    @classmethod
    def _e164(cls, value: str) -> str:
        return e164(value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value and value not in LANGUAGES:
            raise ValueError(f"unknown language {value!r}; known: {', '.join(sorted(LANGUAGES))}")
        return value or None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value:
            zone(value)
        return value or None

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not VARIABLE_NAME.fullmatch(key):
                raise ValueError(f"variable name {key!r:.40} is not a word of at most 32 characters")
            if len(text) > 256:
                raise ValueError(f"variable {key}: longer than 256 characters")
        return value


class CampaignSpec(BaseModel):
    """POST /campaigns. Unset rules take the CAMPAIGN_* settings."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=128)
    carrier: str = Field("twilio", max_length=16)
    language: str | None = Field(None, max_length=16)
    concurrency: int | None = Field(None, ge=1, le=500)
    max_attempts: int | None = Field(None, ge=1, le=20)
    retry_delay_s: float | None = Field(None, ge=0, le=7 * 86400)
    retry_backoff: float | None = Field(None, ge=1, le=10)
    calling_hours: str | None = Field(None, max_length=16)
    timezone: str | None = Field(None, max_length=64)
    # Per-language greeting and system prompt templates; {variable} is the row's value.
    prompts: dict[str, LanguagePrompt] = Field(default_factory=dict, max_length=16)
    contacts: list[ContactSpec] = Field(min_length=1, max_length=MAX_CONTACTS)

    @field_validator("calling_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            CallingHours.parse(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @model_validator(mode="after")
    def _unique(self) -> CampaignSpec:
        seen: dict[str, int] = {}
        problems = []
        for n, contact in enumerate(self.contacts, start=1):
            if contact.number in seen:  # one number, one contact: nobody is called twice
                problems.append(f"contact {n}: {contact.number} is also contact {seen[contact.number]}")
            seen.setdefault(contact.number, n)
        if problems:
            raise ValueError("; ".join(problems[:20]))
        return self


def contact_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """One CSV/JSON row -> the fields of a ContactSpec (unknown columns become variables)."""
    fields = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    number = next((fields.pop(k) for k in NUMBER_KEYS if k in fields), "")
    for other in NUMBER_KEYS:
        fields.pop(other, None)
    tz = next((fields.pop(k) for k in TIMEZONE_KEYS if k in fields), None)
    language = fields.pop("language", None)
    variables = {k: "" if v is None else str(v).strip() for k, v in fields.items() if k}
    return {"number": str(number or "").strip(), "language": (language or "").strip() or None,
            "timezone": (tz or "").strip() or None, "variables": variables}


def parse_contacts(text: str, kind: str) -> list[ContactSpec]:
    """The contacts of a `.csv` or `.json` list; ValueError naming every bad row (first 20)."""
    if kind == "json":
        data = json.loads(text)
        rows = data.get("contacts") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError("a JSON contact list is a list of objects (or {\"contacts\": [...]})")
    elif kind == "csv":
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    else:
        raise ValueError(f"contact lists are .csv or .json, not .{kind}")
    if len(rows) > MAX_CONTACTS:
        raise ValueError(f"{len(rows)} contacts: at most {MAX_CONTACTS} per campaign")
    contacts, problems = [], []
    for n, row in enumerate(rows, start=1):
        try:
            contacts.append(ContactSpec.model_validate(contact_from_row(row)))
        except ValidationError as exc:
            problems += [f"row {n}: {e['loc'][0] if e['loc'] else ''}: {e['msg'].removeprefix('Value error, ')}"
                         for e in exc.errors()]
    if problems:
        raise ValueError("bad contacts:\n  " + "\n  ".join(problems[:20]))
    return contacts


def load_contacts(path: str | Path) -> list[ContactSpec]:
    path = Path(path)
    return parse_contacts(path.read_text(encoding="utf-8"), path.suffix.lower().lstrip("."))
