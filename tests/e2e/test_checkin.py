"""A client's life with Rapport, end to end: onboarding, a check-in, and its stored answers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from flows.i18n import t
from storage.models import Answer, Checkin, Client
from tests.e2e.harness import World, button_data, join_client, next_with_buttons


async def test_onboarding_activates_the_client_with_consent_and_zone(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None
        assert client.status == "active"
        assert client.timezone == "Europe/Berlin"
        assert client.language == "en"
        assert client.consent_version and client.consent_at == world.clock.now()
        assert client.next_checkin_at is not None and client.next_checkin_at > world.clock.now()
    joined = t("en", "therapist.client_joined", client="A.S.")
    assert [m["text"] for m in therapist.user.inbox][-1] == joined


async def test_a_full_checkin_is_stored_with_times(world: World) -> None:
    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    async with world.rt.sessions() as s:
        client = await s.get(Client, alice.id)
        assert client is not None and client.next_checkin_at is not None
        due = client.next_checkin_at
    await world.advance(seconds=(due - world.clock.now()).total_seconds() + 60)
    question = await next_with_buttons(alice.user)
    taps = 0
    while True:
        data = button_data(question)
        choice = next((d for d in data if d.endswith(":8")), None) or next(
            (d for d in data if d.endswith(":n") and "prefer" not in d), data[0]
        )
        world.clock.advance(timedelta(minutes=2))
        await alice.user.tap(question, choice)
        taps += 1
        try:
            question = await alice.user.next_message(
                timeout=3, predicate=lambda m: bool(button_data(m))
            )
        except TimeoutError:
            break
        if any(d.endswith(":s") for d in button_data(question)):  # the comment step
            await alice.user.send("the last session felt rushed")
            break
    thanks = await alice.user.next_message(
        predicate=lambda m: m["text"].startswith(t("en", "checkin.thanks")[:10])
    )
    assert thanks
    await world.drain()
    async with world.rt.sessions() as s:
        checkin = (await s.scalars(select(Checkin))).one()
        assert checkin.status == "answered"
        assert checkin.first_answer_at is not None and checkin.first_answer_at > checkin.opened_at
        answers = {a.item: a for a in await s.scalars(select(Answer))}
    assert {"heard", "goals", "approach", "overall", "wellbeing"} <= set(answers)
    assert answers["heard"].value == 8
    comment = answers["comment"]
    assert comment.text_enc is not None and b"rushed" not in comment.text_enc
    assert world.rt.cipher.decrypt(comment.text_enc) == "the last session felt rushed"


async def test_a_silent_client_is_asked_on_cadence_and_each_unanswered_checkin_is_missed(
    world: World,
) -> None:
    from app import admin

    therapist = await world.join_therapist()
    alice = await join_client(world, therapist, "Alice Smith")
    await admin.client_set(world.rt, alice.id, cadence="every day at 18:00")
    await world.advance(days=3, step=timedelta(hours=3))
    intros = [m for m in alice.user.inbox if m["text"].startswith(t("en", "checkin.intro")[:12])]
    assert len(intros) == 3
    async with world.rt.sessions() as s:
        statuses = [c.status for c in await s.scalars(select(Checkin).order_by(Checkin.id))]
    assert statuses == ["missed", "missed", "open"]
