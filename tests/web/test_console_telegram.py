"""What the console changes reaches Telegram as the bot's own commands do: a pause from the
client page is told to the client (the sandbox, the real bot), and a resume ends it. The way
in is the therapist's `/web`."""

from __future__ import annotations

import httpx

from app import admin
from tests.e2e.conftest import world  # noqa: F401  (the fixture)
from tests.e2e.harness import World, join_client
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
