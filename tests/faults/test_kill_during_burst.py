"""SIGKILL at random moments while many clients type their answers in a burst.

Every update is confirmed to Telegram only once its effects are committed, so a kill loses
nothing: the updates the dead process had received but not committed are delivered again to the
next one. Each client's stored answers are then exactly what they typed, item by item (a lost
answer would shift every later one onto the wrong item), and a crisis text typed in the middle of
the burst gets its reply and its alert.

The kill moments are drawn from a seeded generator; the seed is printed (and can be fixed with
RAPPORT_KILL_SEED) so a failure can be replayed.
"""

from __future__ import annotations

import os
import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.i18n import t
from storage.models import ProcessedUpdate
from tests.e2e.harness import next_with_buttons
from tests.faults.answers import ITEMS, Ledger, Value, parse_answer
from tests.faults.bot_process import BotProcess
from tests.faults.seed import add_clients, add_therapist
from tests.faults.stage import Stage
from tests.faults.traffic import GUARD, delivered

pytestmark = pytest.mark.slow

CLIENTS = 25
KILLS = 3
CRISIS_TEXT = "I want to kill myself"
SCALE_ITEMS = [item for item in ITEMS if item not in ("tension", "talked", "comment")]


def typed_checkin(rng: random.Random, alias: str) -> list[tuple[str, str, Value]]:
    """(text typed, item it answers, value stored) for a whole check-in, typed, no probe."""
    plan: list[tuple[str, str, Value]] = []
    for item in SCALE_ITEMS:
        value = rng.randint(0, 10)
        plan.append((str(value), item, value))
    plan.append(("no", "tension", 0))
    comment = f"notes of {alias}"
    plan.append((comment, "comment", comment))
    return plan


async def processed(stage: Stage) -> int:
    async with stage.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(ProcessedUpdate)) or 0)


async def kill_after(stage: Stage, bot: BotProcess, target: int) -> None:
    """Kill the bot once `target` updates are committed (or nothing is left to handle), and
    start it again after the dead sender's lease ran out."""
    queue = stage.sandbox.default_bot

    async def reached(s: AsyncSession) -> bool:
        done = await s.scalar(select(func.count()).select_from(ProcessedUpdate))
        return (done or 0) >= target or queue.pending_update_count == 0

    await stage.until_db(reached, what=f"{target} updates committed")
    await bot.kill()
    stage.outage_past_lease()
    await bot.start()


async def test_kills_during_a_burst_of_typed_answers_lose_nothing(stage: Stage) -> None:
    seed = int(os.environ.get("RAPPORT_KILL_SEED") or random.SystemRandom().randrange(10**6))
    print(f"kill test seed: {seed} (replay with RAPPORT_KILL_SEED={seed})")
    rng = random.Random(seed)
    now = stage.now()
    therapist = await add_therapist(stage.sessions, stage.cipher, stage.sandbox, now)
    clients = await add_clients(
        stage.sessions, stage.cipher, stage.sandbox, therapist, CLIENTS, now, due=now
    )
    bot = stage.bot()
    await bot.start()  # its first heartbeat opens every check-in

    ledger = Ledger()
    typed: dict[int, list[str]] = {}
    for client in clients:
        question = await next_with_buttons(client.user, timeout=GUARD)
        found = parse_answer(question["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
        assert found is not None and found[1] == ITEMS[0]
        plan = typed_checkin(rng, client.alias)
        for _, item, value in plan:
            ledger.given[found[0]][item] = value
        typed[client.id] = [text for text, _, _ in plan]
    in_crisis = clients[rng.randrange(CLIENTS)]
    typed[in_crisis.id].insert(rng.randint(1, len(SCALE_ITEMS)), CRISIS_TEXT)
    await stage.until_outbox_settled()

    # The burst, in waves of a few texts per client in a random order; one kill per wave, at a
    # random number of committed updates within it.
    total = await processed(stage)
    shortest = min(len(texts) for texts in typed.values())
    cuts = sorted(rng.sample(range(1, shortest), KILLS - 1))
    for start, end in zip([0, *cuts], [*cuts, None], strict=True):
        wave = [(client, text) for client in clients for text in typed[client.id][start:end]]
        order = list(range(len(clients)))
        rng.shuffle(order)
        by_client: dict[int, list[str]] = {}
        for client, text in wave:
            by_client.setdefault(client.id, []).append(text)
        for index in order:
            client = clients[index]
            for text in by_client.get(client.id, []):
                await client.user.send(text)
        target = total + rng.randint(1, len(wave) - 1)
        total += len(wave)
        await kill_after(stage, bot, target)

    await until_all_handled(stage, bot)
    await stage.until_outbox_settled()
    await ledger.assert_stored(stage.sessions, stage.cipher)

    counts = delivered(stage.sandbox)
    reply = t("en", "crisis.reply").split("\n", 1)[0]
    assert any(
        chat == in_crisis.user.chat_id and text.startswith(reply) for chat, text in counts
    ), "the crisis text got its reply"
    alert = t("en", "therapist.alert_crisis_text").split("{", 1)[0]
    assert any(
        chat == therapist.user.chat_id and text.startswith(alert) and in_crisis.alias in text
        for chat, text in counts
    ), "the therapist got the crisis alert"
    thanks = t("en", "checkin.thanks").split("{", 1)[0]
    for client in clients:
        assert any(
            chat == client.user.chat_id and text.startswith(thanks) for chat, text in counts
        ), f"{client.alias} was thanked for a complete check-in"
    assert bot.error_lines() == [], bot.log_tail()


async def until_all_handled(stage: Stage, bot: BotProcess) -> None:
    """Telegram holds nothing unconfirmed and the bot is back to its long poll."""
    queue = stage.sandbox.default_bot
    await stage.sandbox.wait_until(
        lambda: queue.pending_update_count == 0 and stage.traffic.in_flight("getUpdates") == 1,
        timeout=GUARD,
        what="every update confirmed",
    )
    assert bot.running
