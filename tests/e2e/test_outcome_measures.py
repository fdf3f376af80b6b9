"""Outcome measures beside the alliance check, end to end: the real bot, the sandbox, a SQLite
file and a clock that stops at every due instant (`test_scheduling.run_until`).

A practice asks the PHQ-9 every two weeks beside a weekly check-in: the PHQ-9 comes in the first,
third and fifth check-ins only, after the check-in's own items and inside the same check-in (never
a second one that day); a positive item 9 alerts the therapist at once; the digest before the next
session shows the latest total, its band and the reliable change since the first. One client has
their own setting (the GAD-7 every four weeks) and is never asked the PHQ-9. The client's
`/mydata` and the export carry the answers, and erasure removes them.

A client who answers every item of the check-in and stops inside the PHQ-9 has answered the
check-in: no disengagement in the digest, and the PHQ-9 left part-way is not scored; it is
asked again at the next check-in, not a whole interval later.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from app import admin
from app.export import export
from app.reports import digest_now
from flows.i18n import t
from flows.instruments import load_instrument
from flows.moments import SESSION
from flows.statuses import CheckinStatus
from storage.models import Answer, Checkin
from tests.e2e.harness import Person, World, alerts_as_aliases, next_with_buttons
from tests.e2e.test_asking import rated_checkins
from tests.e2e.test_scheduling import (
    BERLIN,
    INTROS,
    MONDAY,
    THANKS,
    D,
    MakeWorld,
    Member,
    answer_checkin,
    answers_of,
    aware,
    checkin_buttons,
    checkins_of,
    join,
    open_question,
    run_until,
    sent_at,
    wall,
)
from tests.e2e.test_scheduling import make_world as make_world  # the fixture

BRIEF = load_instrument("rapport-brief")
PHQ9 = {item.id for item in load_instrument("phq-9").items}
GAD7 = {item.id for item in load_instrument("gad-7").items}
ITEM_9 = "better off dead"
COUNTER = re.compile(r"^(\d+)/(\d+)\. ")


async def answer(world: World, member: Member, phq: int, item_9: int = 0) -> list[str]:
    """Tap through the open check-in: 7 on the 0–10 scales, "no" to yes/no, `phq` on the 0–3
    questionnaire items (`item_9` on the PHQ-9's ninth), skip the comment. The questions asked."""
    user = member.person.user
    question = open_question(member)
    asked = []
    while True:
        data = checkin_buttons(question)
        prefix = data[0].rsplit(":", 1)[0]
        values = {d.rsplit(":", 1)[1] for d in data}
        if "s" in values:
            choice = "s"
        elif "10" in values:
            choice = "7"
        elif "3" in values:  # a 0–3 questionnaire item
            choice = str(item_9 if ITEM_9 in question["text"] else phq)
        else:
            choice = "0"
        asked.append(question["text"])
        user.skip_to_end()
        await user.tap(question, f"{prefix}:{choice}")
        # The next question, in place of this one or (after crisis resources) as a new
        # message; after the last one, the thanks with its /talk button.
        question = await next_with_buttons(user, after=question)
        if not checkin_buttons(question):
            break
    assert question["text"].startswith(THANKS)
    await world.drain()
    return asked


async def weekly_world(make_world: MakeWorld, outcome: str) -> tuple[World, Person, Member]:
    """A weekly check-in (Mondays 18:00 in Berlin, 20 hours to answer, no nudge) asking the
    measure `outcome`; a therapist and one client, Alice."""
    world = await make_world(
        MONDAY,
        cadence="every 7 days at 18:00",
        expire_after="20h",
        nudge_after="off",
        outcomes=[outcome],
    )
    dana = await world.join_therapist("Dana Lee", BERLIN)
    return world, dana, await join(world, dana, "Alice Smith", BERLIN)


async def test_phq9_every_two_weeks_beside_a_weekly_checkin(make_world: MakeWorld) -> None:
    world, dana, alice = await weekly_world(make_world, "phq-9:14d")
    bob = await join(world, dana, "Bob Jones", BERLIN)
    await admin.client_set(world.rt, bob.id, outcomes=["GAD-7:28d"])
    # Five weekly check-ins (Mondays 5 Jan to 2 Feb, 18:00), then a session on Wednesday 4 Feb.
    session_at = aware(D(2026, 2, 4, 15, 0), BERLIN)
    await admin.add_session(world.rt, alice.id, session_at)
    # PHQ-9 answers: all "several days" (8), then "more than half the days" (16); the third time
    # item 9 is "several days".
    phq_by_week = {0: (1, 0), 2: (2, 0), 4: (2, 1)}
    week = 0
    end = aware(D(2026, 2, 3, 12, 0), BERLIN)
    while world.clock.now() < end:
        heard_before = len(dana.user.inbox)
        before = {m.id: len(m.person.user.inbox) for m in (alice, bob)}
        await run_until(world, min(end, world.clock.now() + timedelta(hours=12)))
        fresh = {
            m.id: [x.get("text") or "" for x in m.person.user.inbox[before[m.id] :]]
            for m in (alice, bob)
        }
        if any(x.startswith(INTROS) for x in fresh[alice.id]):
            phq, item_9 = phq_by_week.get(week, (0, 0))
            asked = await answer(world, alice, phq, item_9)
            # The counter counts every question, the PHQ-9's too: 1/n … n/n, the comment last.
            counters = [(int(m[1]), int(m[2])) for x in asked if (m := COUNTER.match(x))]
            assert counters == [(n, len(asked)) for n in range(1, len(asked) + 1)]
            assert (len(asked) > 9) == (week in phq_by_week)
            await answer(world, bob, 1)
            heard = [m.get("text") or "" for m in dana.user.inbox[heard_before:]]
            if week == 4:  # the positive item 9: a person is alerted at once
                assert alerts_as_aliases(heard) == ["A.S."]
                assert heard[-1].startswith(
                    t("en", "therapist.alert_crisis_safety")
                    .split("{at", 1)[0]
                    .format(client="A.S.")
                )
            else:
                assert alerts_as_aliases(heard) == []
            week += 1
    assert week == 5

    # Never two check-ins the same day: the measure rides on the weekly one.
    days = Counter(
        wall(sent_at(m), BERLIN).date()
        for m in alice.later_messages()
        if (m.get("text") or "").startswith(INTROS)
    )
    assert len(days) == 5 and set(days.values()) == {1}

    checkins = await rated_checkins(world, alice.id)
    assert [bool(items & PHQ9) for _, items in checkins] == [True, False, True, False, True]
    assert all(items >= PHQ9 for _, items in checkins if items & PHQ9)  # every item, once asked
    assert not any(items & GAD7 for _, items in checkins)
    bobs = await rated_checkins(world, bob.id)
    assert [bool(items & GAD7) for _, items in bobs] == [True, False, False, False, True]
    assert not any(items & (PHQ9 - {"phq9_item9"}) for _, items in bobs)

    # The digest before the session: the latest total, its band, the change since the first.
    await run_until(world, session_at - timedelta(hours=1))
    texts = [m.get("text") or "" for m in dana.user.inbox]
    digests = [x for x in texts if "PHQ-9 (depression)" in x]
    assert digests, "the digest before the session names the PHQ-9"
    assert "17/27, moderately severe; 8 on " in digests[-1]
    assert "reliably worse (by 6 or more)" in digests[-1]
    report = await digest_now(world.rt, alice.id)
    (phq,) = report.as_json["outcomes"]
    assert (phq["total"], phq["band"], phq["change"]) == (17, "moderately severe", "worse")
    assert [point["total"] for point in phq["series"]] == [8, 16, 17]
    (gad,) = (await digest_now(world.rt, bob.id)).as_json["outcomes"]
    assert gad["instrument"] == "gad-7" and gad["count"] == 2 and gad["change"] == "same"

    # The client's own copy and the export carry the answers; erasure removes them.
    alice.person.user.skip_to_end()
    await alice.person.user.send("/mydata")
    mine = str((await alice.person.next_message())["text"])
    assert "PHQ-9 (depression), question 1: More than half the days" in mine
    assert "phq9" not in mine
    (record,) = await export(world.rt, alice.id)
    exported = {a["item"] for c in record["checkins"] for a in c["answers"]}
    assert exported >= PHQ9
    assert await admin.erase_client(world.rt, alice.id)
    async with world.rt.sessions() as s:
        left = await s.scalar(
            select(func.count())
            .select_from(Answer)
            .join(Checkin, Checkin.id == Answer.checkin_id)
            .where(Checkin.client_id == alice.id)
        )
    assert left == 0


async def test_stopping_inside_the_phq9_is_an_answered_checkin(make_world: MakeWorld) -> None:
    world, _, alice = await weekly_world(make_world, "phq-9:14d")
    # The check-in's own questions (5 on the scales, "no" to tension: no follow-up), then
    # three of the PHQ-9 ("not at all"). Every two weeks, yet asked every week: a PHQ-9 left
    # part-way was not given, so its interval does not start again.
    own = [i.id for i in BRIEF.items if i.asked_at(SESSION) and i.kind != "text"]
    fourth = load_instrument("phq-9").items[3].question("en", SESSION)
    weeks = 0
    end = aware(D(2026, 1, 21, 12, 0), BERLIN)  # Mondays 5, 12 and 19 January, all expired
    while world.clock.now() < end:
        before = len(alice.person.user.inbox)
        await run_until(world, min(end, world.clock.now() + timedelta(hours=12)))
        fresh = [m.get("text") or "" for m in alice.person.user.inbox[before:]]
        if any(x.startswith(INTROS) for x in fresh):
            await answer_checkin(world, alice, value=5, items=len(own) + 3)
            left_at = open_question(alice)["text"]
            assert fourth in left_at, "stopped inside the PHQ-9, at its fourth item"
            weeks += 1
    assert weeks == 3

    rows = await checkins_of(world, alice.id)
    assert [row.status for row in rows] == [CheckinStatus.ANSWERED] * 3
    for row in rows:
        given = await answers_of(world, row.id)
        assert set(own) <= given.keys()
        assert len(given.keys() & PHQ9) == 3, "the rest of the PHQ-9 is simply missing"
    report = await digest_now(world.rt, alice.id)
    data = report.as_json
    assert (data["answered"], data["sent"]) == (3, 3)
    assert not [s for s in data["signals"] if s["code"] in ("partial", "silence")]
    assert data["outcomes"] == [], "a PHQ-9 left part-way is not scored"
