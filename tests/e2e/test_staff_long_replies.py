"""A therapist's replies that grow with the caseload: a practice of ninety clients still gets its
`/clients` list (in as many messages as it takes), never nothing. A number the bot cannot read
is a usage line, never an error."""

from __future__ import annotations

from app import admin
from flows.i18n import t
from tests.e2e.harness import World, join_client


async def test_clients_with_a_large_caseload_arrives_whole(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    aliases = [f"Client number {i:03d} of Dana Lee, B" for i in range(90)]
    for i, alias in enumerate(aliases):
        await admin.add_client(world.rt, dana.id, f"Person {i}", alias=alias)
    dana.user.skip_to_end()
    heard = len(dana.user.inbox)
    await dana.user.send("/clients")
    await dana.next_message()
    await world.drain()
    got = "\n".join(m["text"] for m in dana.user.inbox[heard:])
    assert got.startswith(t("en", "staff.clients_title"))
    assert all(alias in got for alias in aliases)
    assert all(len(m["text"]) <= 4096 for m in dana.user.inbox[heard:])


async def test_a_pause_of_superscript_days_is_a_usage_line_not_an_error(world: World) -> None:
    dana = await world.join_therapist("Dana Lee")
    await join_client(world, dana, "Alice Smith")
    for odd in ("²", "①", "٣"):
        dana.user.skip_to_end()
        await dana.user.send(f"/pause A.S. {odd}")
        reply = await dana.next_message()
        assert reply["text"] == t("en", "staff.pause_usage", max=365), reply["text"]
