"""Invite links point at the practice's own bot or are not printed at all: before the bot has ever
started (no username stored, no token to ask Telegram with) a link would name a made-up bot and
hand the client's single-use token to whoever owns that name."""

from __future__ import annotations

import json

from tests.e2e.test_cli import BOT_USERNAME, bot_has_started
from tests.e2e.test_cli import rapport as rapport  # the fixtures
from tests.e2e.test_cli import rapport_before_start as rapport_before_start


def test_before_the_bot_started_people_are_added_without_a_link_and_a_loud_warning(  # type: ignore[no-untyped-def]
    rapport_before_start,
) -> None:
    out = rapport_before_start("therapist", "add", "--name", "Dana Lee")
    assert "t.me" not in out
    assert out.startswith("rapport: warning: no invite link: the bot's Telegram username")
    assert "therapist 1 added" in out and "`rapport invite --therapist 1`" in out
    client = json.loads(
        rapport_before_start("client", "add", "--therapist", "1", "--name", "Alice", "--json")
    )
    assert client["invite_link"] is None
    assert "rapport run" in client["warning"] and "--client 1" in client["warning"]


def test_before_the_bot_started_a_new_invite_is_refused_in_one_line(  # type: ignore[no-untyped-def]
    rapport_before_start,
) -> None:
    rapport_before_start("therapist", "add", "--name", "Dana Lee")
    out = rapport_before_start("invite", "--therapist", "1", code=1)
    assert out.count("\n") == 1 and out.startswith("rapport: no invite link"), out
    assert "t.me" not in out


def test_once_the_bot_has_started_links_name_it(rapport_before_start, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    rapport_before_start("therapist", "add", "--name", "Dana Lee")
    bot_has_started(rapport_before_start, sqlite_url)
    out = rapport_before_start("invite", "--therapist", "1")
    assert f"invite link: https://t.me/{BOT_USERNAME}?start=" in out
    assert "warning" not in out
