"""What the console changes reaches Telegram as the bot's own commands do: a pause from the
client page is told to the client (the sandbox, the real bot), and a resume ends it; an alert
acknowledged in the console is edited in the therapist's chat as a tap does. The way in is the
therapist's `/web`."""

from __future__ import annotations

import httpx

from app import admin
from app.console import new_link_token
from app.console_alerts import ConsoleAlerts
from tests.e2e.conftest import world  # noqa: F401  (the fixture)
from tests.e2e.harness import World, button_data, button_labels, join_client
from tests.e2e.test_acknowledgement import (
    CONTACTED,
    SEEN,
    audited,
    crisis_alert,
    current,
    stored_alerts,
    tap,
)
from tests.e2e.test_safety_contact import client_of_absent_therapist, crisis_reply
from tests.web.test_console_http import BASE, csrf_of, sign_in
from web.app import console_app


async def test_pause_and_resume_from_the_console_reach_the_client(world: World) -> None:  # noqa: F811
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    (client,) = await admin.list_clients(world.rt)
    await dana.user.send("/web")
    reply = await dana.user.next_message(predicate=lambda m: "/signin/" in m["text"])
    link = reply["text"].rsplit("\n", 1)[1]
    assert (
        link.startswith(f"{world.rt.settings.console_url}/signin/")
        and "10 minutes" in reply["text"]
    )
    transport = httpx.ASGITransport(app=console_app(world.rt))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as web:
        assert (await sign_in(web, link.rsplit("/", 1)[1])).status_code == 303
        page = await web.get(f"/clients/{client['code']}")
        answer = await web.post(
            f"/clients/{client['code']}/pause", data={"csrf": csrf_of(page.text), "days": "3"}
        )
        assert answer.status_code == 303
        await world.drain()
        told = await alice.user.next_message()
        assert told["text"].startswith("Dana Lee has paused your check-ins")
        assert (await admin.list_clients(world.rt))[0]["status"] == "paused"
        page = await web.get(f"/clients/{client['code']}")
        assert "Resume check-ins" in page.text
        await web.post(f"/clients/{client['code']}/resume", data={"csrf": csrf_of(page.text)})
        await world.drain()
        assert (await admin.list_clients(world.rt))[0]["status"] == "active"
        bad = await web.post(
            f"/clients/{client['code']}/pause", data={"csrf": csrf_of(page.text), "days": "x"}
        )
        assert bad.status_code == 400


async def test_an_alert_acknowledged_in_the_console_is_edited_in_telegram(world: World) -> None:  # noqa: F811
    """The same acknowledgement as a tap: stored once, the bot's message edited to say who and
    how, its buttons gone; another therapist's console refuses the same alert id."""
    dana = await world.join_therapist("Dana Lee")
    sam = await world.join_therapist("Sam Reyes")
    alice = await join_client(world, dana, "Alice Smith")
    alert = await crisis_alert(world, alice, dana)
    assert button_labels(alert) == [SEEN, CONTACTED]
    app = console_app(world.rt, alerts=ConsoleAlerts())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as web:
        await sign_in(web, await new_link_token(world.rt, sam.id))
        page = await web.get("/alerts")
        assert "A.S." not in page.text
        (stored,) = await stored_alerts(world)
        guessed = await web.post(
            "/alerts/acknowledge",
            data={"alert": str(stored.id), "choice": "seen", "csrf": csrf_of(page.text)},
        )
        assert guessed.status_code == 404
        web.cookies.clear()

        await sign_in(web, await new_link_token(world.rt, dana.id))
        page = await web.get("/alerts")
        assert "A.S." in page.text and 'value="contacted"' in page.text
        done = await web.post(
            "/alerts/acknowledge",
            data={"alert": str(stored.id), "choice": "contacted", "csrf": csrf_of(page.text)},
        )
        assert done.status_code == 303
    await world.drain()
    shown = current(dana.user, alert)
    assert not button_labels(shown)
    assert shown["text"].startswith(alert["text"])
    assert "Acknowledged by Dana Lee" in shown["text"] and CONTACTED in shown["text"]
    assert await audited(world) == [(f"therapist:{dana.id}", "alert_contacted", alice.id)]
    # A tap on a stale copy of the buttons now answers "already", as after a tap.
    again = await tap(dana.user, alert, data=button_data(alert)[0], forge=True)
    assert "Acknowledged by Dana Lee" in again


async def test_the_safety_contact_answers_in_the_console_what_telegram_showed_them(
    world: World,  # noqa: F811
) -> None:
    """An alert that went to the safety contact (the therapist never joined): the contact, who
    may not read the client's page, sees it in the console without a link and answers it there;
    their Telegram copy is edited as after a tap."""
    sam = await world.join_therapist("Sam Reyes")
    await admin.practice_set(world.rt, safety_contact=str(sam.id))
    alice = await client_of_absent_therapist(world)
    heard = len(sam.user.inbox)
    await crisis_reply(world, alice)
    (alert,) = sam.user.inbox[heard:]
    (stored,) = await stored_alerts(world)
    app = console_app(world.rt, alerts=ConsoleAlerts())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as web:
        await sign_in(web, await new_link_token(world.rt, sam.id))
        page = await web.get("/alerts")
        assert "A.S." in page.text and "/clients/" not in page.text
        (client,) = await admin.list_clients(world.rt)
        assert (await web.get(f"/clients/{client['code']}")).status_code == 404
        done = await web.post(
            "/alerts/acknowledge",
            data={"alert": str(stored.id), "choice": "seen", "csrf": csrf_of(page.text)},
        )
        assert done.status_code == 303
    await world.drain()
    shown = current(sam.user, alert)
    assert not button_labels(shown) and "Acknowledged by Sam Reyes" in shown["text"]
