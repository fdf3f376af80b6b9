"""The console speaks the signed-in therapist's language (their setting, from Telegram): every
page's words come from the catalogue in en/es/ru, and dates use the language's names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from app.console_alerts import ConsoleAlerts
from flows.i18n import format_date, t
from storage.models import Therapist
from tests.web.conftest import Practice
from tests.web.test_console_alerts import raise_alert
from tests.web.test_console_http import BASE, sign_in
from web.app import console_app

ENGLISH_ONLY = ("Caseload", "Sign out", "Next session", "Open alerts", "Practice settings")


async def speaks(practice: Practice, therapist_id: int, lang: str) -> None:
    async with practice.rt.sessions() as s, s.begin():
        await s.execute(update(Therapist).where(Therapist.id == therapist_id).values(language=lang))


@pytest.fixture
async def web(practice: Practice) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app(practice.rt, alerts=ConsoleAlerts()))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@pytest.mark.parametrize("lang", ["es", "ru"])
async def test_every_page_in_the_therapist_s_language(
    practice: Practice, web: httpx.AsyncClient, lang: str
) -> None:
    await raise_alert(practice, "A.S.", urgent=True)
    await speaks(practice, practice.admin, lang)
    await sign_in(web, await practice.link(practice.admin))
    paths = [
        f"/caseload?therapist={practice.dana}",
        f"/clients/{practice.codes['A.S.']}",
        "/alerts",
        "/settings",
        "/people",
        "/audit",
    ]
    for path in paths:
        page = await web.get(path)
        assert page.status_code == 200, path
        assert f'<html lang="{lang}">' in page.text, path
        assert t(lang, "console.nav.sign_out") in page.text, path
        assert not [word for word in ENGLISH_ONLY if word in page.text], path
    client = (await web.get(f"/clients/{practice.codes['A.S.']}")).text
    assert t(lang, "alert.button_contacted").replace("'", "&#39;") in client
    assert t(lang, "console.status.invited") in client
    # The sample check-ins are dated with the language's month names, never English ones.
    now = practice.rt.clock.now()
    english = format_date(now, "MMM", "en")
    assert f" {format_date(now, 'MMM', lang)} " in client and f" {english} " not in client


async def test_before_sign_in_the_pages_are_english(
    practice: Practice, web: httpx.AsyncClient
) -> None:
    page = await web.get(f"/signin/{await practice.link(practice.dana)}")
    assert '<html lang="en">' in page.text and t("en", "console.signin.button") in page.text
