"""The console in a real browser (Playwright driving Debian's Chromium), served by the bot itself
in webhook mode (`/telegram` and the console in one app), signing in through `/web` in the
sandbox; an alert acknowledged in the browser is edited in the therapist's Telegram chat. axe-core
runs on every page: no serious or critical violations.

One browser for the module; each test has its own practice and its own browser context.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from app import admin
from app.clock import ManualClock
from app.console import LINK_TTL, set_role
from bench.population import add_checkins
from flows.i18n import t
from tests.conftest import START, TEST_KEY
from tests.e2e.harness import Person, World, button_labels, join_client, onboard, token_of
from tests.e2e.test_acknowledgement import CONTACTED, crisis_alert, current, stored_alerts

CHROMIUM = os.environ.get("RAPPORT_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "axe" / "axe.min.js"

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(async_playwright is None, reason="Playwright is not installed"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set RAPPORT_CHROMIUM)",
    ),
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.slow,
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        await launched.close()


@dataclass
class Scene:
    world: World
    base: str
    dana: Person
    eli: Person
    clients: dict[str, str]  # alias -> code
    alice: Person

    async def link(self, who: Person) -> str:
        """The sign-in link, as the bot sends it for `/web`, on the port the test serves."""
        await who.user.send("/web")
        message = await who.user.next_message(predicate=lambda m: "/signin/" in m["text"])
        token = re.search(r"/signin/([A-Za-z0-9_-]+)", message["text"])
        assert token is not None, message["text"]
        return f"{self.base}/signin/{token.group(1)}"


@pytest_asyncio.fixture(loop_scope="module")
async def scene(sqlite_url: str) -> AsyncIterator[Scene]:
    clock = ManualClock(START)
    world = await World.start(sqlite_url, clock, TEST_KEY, webhook=True)
    try:
        dana = await world.join_therapist("Dana Lee")
        eli = await world.join_therapist("Eli Moss")
        alice = await join_client(world, dana, "Alice Smith")
        bob = await join_client(world, dana, "Bob Tate")
        cleo = await join_client(world, eli, "Cleo Umber")
        await add_checkins(world.rt, [alice.id, bob.id, cleo.id], clock.now(), weeks=6)
        clients = {c["alias"]: c["code"] for c in await admin.list_clients(world.rt)}
        base = f"http://127.0.0.1:{world.webhook_port}"
        yield Scene(world, base, dana, eli, clients, alice)
    finally:
        await world.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1200, "height": 900})
    yield ctx
    await ctx.close()


async def sign_in(page: Page, link: str) -> Any:
    await page.goto(link)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    return page


async def axe(page: Page) -> None:
    """No serious or critical violations on the page as it is."""
    bad = [v for v in await violations(page) if v["impact"] in ("serious", "critical")]
    assert not bad, f"{page.url}: {bad}"


async def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core on the page, served from the console's origin (the CSP stays on)."""

    async def serve(route: Any) -> None:
        await route.fulfill(body=AXE.read_bytes(), content_type="text/javascript")

    await page.route("**/__axe.min.js", serve)
    await page.add_script_tag(url="/__axe.min.js")
    found: list[dict[str, Any]] = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))"
    )
    return found


async def test_sign_in_read_the_caseload_and_move_the_next_checkin(
    scene: Scene, context: BrowserContext
) -> None:
    page = await sign_in(await context.new_page(), await scene.link(scene.dana))
    assert page.url.endswith("/caseload")
    rows = page.locator("tbody tr")
    assert await rows.count() == 2
    text = await page.locator("main").inner_text()
    assert "A.S." in text and "B.T." in text and "C.U." not in text
    assert await page.locator("svg.spark").count() == 2
    await axe(page)

    await page.get_by_role("link", name="A.S.").click()
    await page.wait_for_url(f"**/clients/{scene.clients['A.S.']}")
    before = await page.locator("#next-checkin").inner_text()
    assert await page.locator("svg.chart").count() == 1
    await axe(page)
    await page.get_by_label("Cadence (or “default”)").fill("weekdays sat at 10:00")
    await page.get_by_role("button", name="Set cadence").click()
    await page.wait_for_selector(".notice")
    after = await page.locator("#next-checkin").inner_text()
    assert after != before and after.startswith("Sat") and after.endswith("10:00")
    await axe(page)
    # The check itself can fail: an unlabelled field is found.
    await page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    assert "label" in {v["id"] for v in await violations(page)}


async def test_admin_pages_and_an_ics_upload(scene: Scene, context: BrowserContext) -> None:
    await set_role(scene.world.rt, scene.dana.id, "admin")
    page = await sign_in(await context.new_page(), await scene.link(scene.dana))
    for path in ("/settings", "/people", "/audit", f"/clients/{scene.clients['A.S.']}"):
        await page.goto(scene.base + path)
        await axe(page)
    await page.goto(scene.base + "/settings")
    await page.get_by_label("Sample client's time zone").fill("Asia/Tokyo")
    await page.get_by_role("button", name="Show the next check-ins").click()
    await page.wait_for_selector("#preview li")
    assert await page.locator("#preview li").count() == 5
    await axe(page)

    await page.goto(scene.base + "/people")
    start = (START + timedelta(days=3)).strftime("%Y%m%dT140000Z")
    calendar = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:u1\r\n"
        f"DTSTART:{start}\r\nDTEND:{start[:-5]}5000Z\r\n"
        f"SUMMARY:#{scene.clients['B.T.']}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    await page.get_by_label("Whose calendar").select_option(str(scene.dana.id))
    await page.get_by_label("Calendar file").set_input_files(
        files=[{"name": "cal.ics", "mimeType": "text/calendar", "buffer": calendar.encode()}]
    )
    await page.get_by_role("button", name="Import").click()
    report = await page.locator("#import-report").inner_text()
    assert "1 created" in report and "dry run" in report
    assert await admin.list_sessions(scene.world.rt) == []
    await page.get_by_label("Calendar file").set_input_files(
        files=[{"name": "cal.ics", "mimeType": "text/calendar", "buffer": calendar.encode()}]
    )
    await page.get_by_label("Dry run: report only, write nothing").uncheck()
    await page.get_by_role("button", name="Import").click()
    assert "1 created" in await page.locator("#import-report").inner_text()
    assert len(await admin.list_sessions(scene.world.rt)) == 1
    await axe(page)

    await page.get_by_label("Name (kept encrypted)").fill("Dora Vale")
    await page.get_by_role("button", name="Add and make an invite link").click()
    await page.wait_for_selector("svg.qr")
    assert "https://t.me/" in await page.locator(".notice").first.inner_text()
    await axe(page)


async def test_an_admin_moves_a_client_to_a_new_telegram_account(
    scene: Scene, context: BrowserContext
) -> None:
    """Through the browser: the code typed again, the old account a stranger to the bot, the
    new link shown once, and the client back on a new account with their history."""
    await set_role(scene.world.rt, scene.dana.id, "admin")
    page = await sign_in(await context.new_page(), await scene.link(scene.dana))
    code = scene.clients["A.S."]
    await page.goto(scene.base + "/people")
    await page.locator("#m_person").select_option(f"client:{code}")
    confirm = page.get_by_label("To confirm, type the client's code or the therapist's id again")
    await confirm.fill("RC-0000")
    await page.get_by_role("button", name="Disconnect and make a new link").click()
    assert "again" in await page.locator("p.error").inner_text()
    await page.locator("#m_person").select_option(f"client:{code}")
    await page.get_by_label("To confirm, type the client's code or the therapist's id again").fill(
        code
    )
    await page.get_by_role("button", name="Disconnect and make a new link").click()
    moved = await page.locator("#moved").inner_text()
    assert f"{code}: the old Telegram account is disconnected" in moved
    link = await page.locator("#moved code.link").inner_text()
    await axe(page)

    scene.alice.user.skip_to_end()
    await scene.alice.user.send("/mydata")
    stranger = await scene.alice.user.next_message()
    assert stranger["text"] == t("en", "chat.stranger")
    phone = scene.world.sandbox.user("Alice", language_code="en")
    await onboard(scene.world, phone, token_of(link))
    await phone.send("/mydata")
    mine = await phone.next_message()
    assert mine["text"] != t("en", "chat.stranger")  # her data, on the new account
    trail = [(e["actor"], e["action"]) for e in await admin.audit_log(scene.world.rt)]
    assert (f"therapist:{scene.dana.id}", "client_moved") in trail


async def test_refusals(scene: Scene, context: BrowserContext) -> None:
    """A supervisor may not edit; a therapist cannot reach another's client, however the URL
    is typed; a link works once and for ten minutes; a form needs its CSRF token."""
    await set_role(scene.world.rt, scene.eli.id, "supervisor", [scene.dana.id])
    link = await scene.link(scene.eli)
    page = await sign_in(await context.new_page(), link)
    await page.goto(f"{scene.base}/clients/{scene.clients['A.S.']}")
    assert "Read only" in await page.locator("main").inner_text()
    assert await page.get_by_role("button", name="Set cadence").count() == 0
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    refused = await page.request.post(
        f"{scene.base}/clients/{scene.clients['A.S.']}/cadence",
        form={"csrf": csrf or "", "cadence": "off"},
    )
    assert refused.status == 403
    no_token = await page.request.post(
        f"{scene.base}/clients/{scene.clients['C.U.']}/cadence", form={"cadence": "off"}
    )
    assert no_token.status == 403
    assert {c["cadence"] for c in await admin.list_clients(scene.world.rt)} == {None}

    # The same link again, from a fresh browser: refused.
    other = await context.browser.new_context()  # type: ignore[union-attr]
    try:
        again = await other.new_page()
        await again.goto(link)
        await again.get_by_role("button", name="Sign in").click()
        await again.wait_for_load_state()
        assert "does not work" in await again.locator("main").inner_text()
        await axe(again)
        # Dana, signed in, guesses the URL of Eli's client.
        await sign_in(again, await scene.link(scene.dana))
        answer = await again.goto(f"{scene.base}/clients/{scene.clients['C.U.']}")
        assert answer is not None and answer.status == 404
        await axe(again)
        # A link left for more than ten minutes.
        stale = await scene.link(scene.dana)
        scene.world.clock.advance(LINK_TTL + timedelta(seconds=1))
        fresh = await (await other.browser.new_context()).new_page()  # type: ignore[union-attr]
        await fresh.goto(stale)
        await fresh.get_by_role("button", name="Sign in").click()
        await fresh.wait_for_load_state()
        assert "does not work" in await fresh.locator("main").inner_text()
        await fresh.context.close()
    finally:
        await other.close()


async def test_an_alert_acknowledged_in_the_browser_is_edited_in_telegram(
    scene: Scene, context: BrowserContext
) -> None:
    """Dana's client writes crisis words: Eli, another therapist, neither sees the alert nor
    can acknowledge it by its id; as Dana's supervisor he reads it and still cannot; Dana
    acknowledges it in the browser and her Telegram message changes as after a tap."""
    alert = await crisis_alert(scene.world, scene.alice, scene.dana)
    (stored,) = await stored_alerts(scene.world)
    page = await sign_in(await context.new_page(), await scene.link(scene.eli))
    await page.goto(scene.base + "/alerts")
    assert "A.S." not in await page.locator("main").inner_text()
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    guessed = await page.request.post(
        scene.base + "/alerts/acknowledge",
        form={"csrf": csrf or "", "alert": str(stored.id), "choice": "seen"},
    )
    assert guessed.status == 404

    await set_role(scene.world.rt, scene.eli.id, "supervisor", [scene.dana.id])
    page = await sign_in(await context.new_page(), await scene.link(scene.eli))
    await page.goto(scene.base + "/alerts")
    assert "A.S." in await page.locator("main").inner_text()
    assert await page.get_by_role("button", name=CONTACTED).count() == 0
    await axe(page)
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    refused = await page.request.post(
        scene.base + "/alerts/acknowledge",
        form={"csrf": csrf or "", "alert": str(stored.id), "choice": "seen"},
    )
    assert refused.status == 403
    assert [a.ack_at for a in await stored_alerts(scene.world)] == [None]

    other = await context.browser.new_context()  # type: ignore[union-attr]
    try:
        page = await sign_in(await other.new_page(), await scene.link(scene.dana))
        row = page.locator("tbody tr").first
        assert "A.S." in await row.inner_text() and "open urgent: 1" in await row.inner_text()
        await page.get_by_role("link", name="Alerts").click()
        await page.wait_for_url("**/alerts")
        await axe(page)
        await page.get_by_role("button", name=CONTACTED).click()
        await page.wait_for_selector(".notice")
        assert "Acknowledged." in await page.locator(".notice").inner_text()
        assert "A.S." not in await page.locator("main").inner_text()
        await axe(page)
    finally:
        await other.close()
    await scene.world.drain()
    shown = current(scene.dana.user, alert)
    assert not button_labels(shown)
    assert "Acknowledged by Dana Lee" in shown["text"] and CONTACTED in shown["text"]
