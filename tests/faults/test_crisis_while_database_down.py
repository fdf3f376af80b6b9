"""Crisis words while the database is down: the client gets the crisis resources at once, told
truthfully that nobody has been told yet; the update stays unconfirmed; once the database is back
it is handled as any other, and the therapist is alerted."""

from __future__ import annotations

from app.clock import ManualClock
from flows.i18n import t
from storage.db import upgrade_async
from tests.faults.inprocess import running_world, settle
from tests.faults.pg_cluster import Cluster
from tests.faults.seed import add_clients, add_therapist
from tests.faults.traffic import GUARD

CRISIS_WORDS = "i cant do this anymore, i want to kill myself"


async def test_a_crisis_text_while_the_database_is_down(
    restartable_pg: Cluster, clock: ManualClock
) -> None:
    await upgrade_async(restartable_pg.url)
    async with running_world(restartable_pg.url, clock) as (world, _traffic):
        now = world.clock.now()
        dana = await add_therapist(world.rt.sessions, world.rt.cipher, world.sandbox, now)
        (alice,) = await add_clients(
            world.rt.sessions, world.rt.cipher, world.sandbox, dana, 1, now
        )
        queue = world.sandbox.default_bot
        default = t("en", "crisis.default_resources")

        await restartable_pg.stop()
        alice.user.skip_to_end()
        await alice.user.send(CRISIS_WORDS)
        at_once = await alice.user.next_message(timeout=GUARD)
        assert at_once["text"] == t("en", "crisis.reply_delayed", resources=default)
        assert queue.pending_update_count == 1, "confirmed while the database was down"
        assert dana.user.inbox == []

        await restartable_pg.start()
        later = await alice.user.next_message(timeout=GUARD)
        assert later["text"] == t("en", "crisis.reply", resources=default, therapist="Dana Lee")
        await settle(world)
        [alert] = dana.user.inbox
        assert alert["text"].startswith(f"⚠️ Urgent: {alice.alias} ")
        await world.sandbox.wait_until(
            lambda: queue.pending_update_count == 0, timeout=GUARD, what="the update confirmed"
        )
        told = [m for m in alice.user.inbox if m["text"].startswith("Thank you for telling me")]
        assert len(told) == 2, "the resources once while down, the true reply once back"
