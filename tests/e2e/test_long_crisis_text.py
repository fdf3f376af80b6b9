"""Crisis words are read in every text, whatever its length and whatever question is open: a
5,000-character message sent while a 0-10 question waits for a tap gets the crisis resources
and alerts a person, not "please tap one of the buttons above"."""

from __future__ import annotations

import pytest

from app.clock import ManualClock
from flows.i18n import t
from tests.conftest import TEST_KEY
from tests.e2e.harness import World, join_client, open_checkin_now
from tests.e2e.test_acknowledgement import stored_alerts

FILLER = "I keep going over what happened at work this week and it is all a blur. "


@pytest.mark.parametrize("where", ["start", "middle", "end"])
async def test_a_long_crisis_text_during_a_question_is_heard(world: World, where: str) -> None:
    dana = await world.join_therapist("Dana Lee")
    alice = await join_client(world, dana, "Alice Smith")
    question = await open_checkin_now(world, alice)
    assert "0" in str(question.get("reply_markup"))  # a 0-10 question waits for a tap
    words = "honestly i just want to kill myself"
    filler = (FILLER * 80)[:4970]
    text = {
        "start": f"{words}. {filler}",
        "middle": f"{filler[:2500]} {words}. {filler[2500:]}",
        "end": f"{filler} {words}",
    }[where]
    assert len(text) >= 5000
    heard = len(dana.user.inbox)
    alice.user.skip_to_end()

    await alice.user.send(text)
    reply = await alice.next_message()
    await world.drain()

    assert reply["text"].startswith(t("en", "crisis.reply", resources="", therapist="")[:40])
    assert "112" in reply["text"]
    hints = [t("en", "checkin.tap_hint", low=0, high=10), t("en", "checkin.choice_hint")]
    assert not any(m["text"] in hints for m in alice.user.inbox)
    [alert] = dana.user.inbox[heard:]
    assert alert["text"].startswith("⚠️ Urgent: A.S.")
    assert [a.kind for a in await stored_alerts(world)] == ["crisis"]


async def test_the_same_through_the_webhook(sqlite_url: str, clock: ManualClock) -> None:
    """Webhook mode has its own door (a body limit): a long crisis text passes it."""
    world = await World.start(sqlite_url, clock, TEST_KEY, webhook=True)
    try:
        await test_a_long_crisis_text_during_a_question_is_heard(world, "end")
    finally:
        await world.stop()
