"""The digest in the therapist's language, end to end: a therapist whose Telegram speaks Spanish
gets the digest before a session — the chart, its caption and the text — in Spanish, and so does
`/digest` and the `rapport digest` command. Same method as `test_sessions_e2e`: the real bot, the
sandbox, a SQLite file and a clock that stops at every due instant."""

from __future__ import annotations

import re
import string
from datetime import datetime, timedelta
from typing import Any

from app import admin
from app.history import client_history
from app.reports import digest_now
from flows.i18n import CATALOGS, t
from insights.chart import render_chart
from insights.digest import build_digest, caption, render_text
from insights.texts import PREFIX
from insights.texts import text as therapist_text
from insights.thresholds import Thresholds
from storage import people
from storage.models import Client, TherapySession
from tests.e2e.harness import (
    Person,
    World,
    data_for,
    join_client,
    next_with_buttons,
    open_checkin_now,
    token_of,
)
from tests.e2e.test_scheduling import (
    BERLIN,
    MONDAY,
    D,
    MakeWorld,
    aware,
    run_until,
    sent_at,
    wall,
)
from tests.e2e.test_scheduling import make_world as make_world  # the fixture

PNG = b"\x89PNG\r\n\x1a\n"
ITEMS = ("heard", "goals", "approach", "overall")


async def join_therapist_speaking(world: World, name: str, language_code: str) -> Person:
    """A therapist who opens their invite from a Telegram app set to `language_code`."""
    data = await admin.add_therapist(world.rt, name, BERLIN)
    user = world.sandbox.user(first_name=name.split()[0], language_code=language_code)
    await user.send(f"/start {token_of(data['invite_link'])}")
    welcome = await user.next_message()
    assert welcome["text"] == t(language_code, "therapist.welcome")
    return Person(data["id"], user)


async def answer(world: World, client: Person, scores: dict[str, str], comment: str) -> None:
    """A whole check-in in Spanish: the scores, "no" to tension, and a comment."""
    question = await open_checkin_now(world, client)
    for value in (*(scores[item] for item in ITEMS), "7", "0"):  # wellbeing, tension
        world.clock.advance(timedelta(minutes=2))
        await client.user.tap(question, data_for(question, value))
        question = await next_with_buttons(client.user)
    world.clock.advance(timedelta(minutes=3))
    await client.user.send(comment)
    thanks = await client.user.next_message()
    assert thanks["text"] == t("es", "checkin.thanks", therapist="Dana Lee")
    await world.drain()


def english_wording() -> set[str]:
    """Every fixed English phrase of the therapist catalog with a word of four letters or more
    ("check-in" is also the clients' Spanish word)."""
    return {
        literal.strip()
        for key, template in CATALOGS["en"].items()
        if key.startswith(PREFIX)
        for literal, *_ in string.Formatter().parse(template)
        if re.search(r"[A-Za-z]{4,}", re.sub(r"(?i)check-ins?", "", literal))
    }


def assert_spanish(message: str) -> None:
    for phrase in english_wording():
        assert not re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", message), phrase


def digest_messages(therapist: Person, title: str) -> list[dict[str, Any]]:
    return [
        m
        for m in therapist.user.inbox
        if (m.get("text") or m.get("caption") or "").startswith(title)
    ]


async def test_a_spanish_speaking_therapist_gets_the_digest_in_spanish(
    make_world: MakeWorld,
) -> None:
    world = await make_world(MONDAY, cadence="off")
    dana = await join_therapist_speaking(world, "Dana Lee", "es")
    # The client lives six hours behind her therapist: every time shown is the therapist's.
    alicia = await join_client(world, dana, "Alicia Gómez", language="Español", zone="Lima")
    nine = dict.fromkeys(ITEMS, "9")
    await answer(world, alicia, nine, "me sentí escuchada")
    world.clock.advance(timedelta(days=1))
    await answer(world, alicia, nine, "fue útil")
    world.clock.advance(timedelta(days=1))
    await answer(world, alicia, {**nine, "goals": "5"}, "no sé si vamos bien")
    session = await admin.add_session(world.rt, alicia.id, aware(D(2026, 1, 8, 15, 0), BERLIN))
    digest_at = aware(D(2026, 1, 8, 12, 0), BERLIN)
    assert datetime.fromisoformat(session["digest_at"]) == digest_at
    await run_until(world, digest_at + timedelta(hours=1))

    async with world.rt.sessions() as s:
        client = await s.get(Client, alicia.id)
        row = await s.get(TherapySession, session["id"])
        assert client is not None and row is not None and row.digest_sent_at == digest_at
        practice = await people.get_practice(s, digest_at)
        history = await client_history(s, world.rt.cipher, client, practice)
    title = therapist_text("es", "digest.title", alias=client.alias, finding="")
    photo, *texts = digest_messages(dana, title)
    assert "photo" in photo and len(texts) == 1 and "text" in texts[0]  # one photo, one text
    received = texts[0]["text"]
    for message in (photo["caption"], received):
        assert_spanish(message)
    headline = (
        f"Resumen de {client.alias}: Alianza 32/40, por debajo del umbral; «objetivos» baja a 5/10"
    )
    assert photo["caption"].splitlines() == [headline, "Sesión: jueves 8 de enero, 15:00"]
    assert received.splitlines()[:3] == [
        headline,
        "Sesión: jueves 8 de enero, 15:00",
        "Check-ins desde la última sesión: 3 de 3 respondidos",
    ]
    for line in (
        "Lo que llama la atención:",
        "• vigilar, 7 de enero: Puntuación total de alianza 32/40, por debajo del punto de corte",
        "«trabajamos en lo que yo quería» (objetivos) en 5/10",
        "Últimas respuestas, 7 de enero: alianza 32/40, por debajo del umbral de 36 "
        "(vínculo 9, objetivos 5, enfoque 9, global 9)",
        "Bienestar, 7 de enero: ",
        "En palabras del cliente:\n5 de enero: «me sentí escuchada»\n6 de enero: «fue útil»\n"
        "7 de enero: «no sé si vamos bien»",
        "Posibles formas de abrir el tema:",
        "– Revisa los objetivos en conjunto",
    ):
        assert line in received, line
    assert wall(sent_at(photo), BERLIN) == D(2026, 1, 8, 12, 0)

    # Exactly what the insights build in Spanish from the same history, chart included.
    expected = build_digest(history, digest_at, row.starts_at, Thresholds(), lang="es")
    assert received == "\n".join(render_text(expected, BERLIN))
    assert photo["caption"] == caption(expected, BERLIN)
    chart = world.sandbox.world.files.get(photo["photo"][-1]["file_id"])
    assert chart is not None and chart.data.startswith(PNG)
    finding = expected.headline
    assert chart.data == render_chart(history, digest_at, lang="es", finding=finding)
    assert chart.data != render_chart(history, digest_at, lang="en", finding=finding)

    # On demand, from Telegram and from the command line, it is Spanish too.
    dana.user.skip_to_end()
    await dana.user.send(f"/digest {client.alias}")
    on_demand = await dana.user.next_message(
        predicate=lambda m: (m.get("text") or "").startswith(title)
    )
    assert_spanish(on_demand["text"])
    assert "Check-ins desde la última sesión: 3 de 3 respondidos" in on_demand["text"]
    report = await digest_now(world.rt, alicia.id)
    assert report.chunks[0].startswith(title) and report.as_json["lang"] == "es"
    assert report.png == render_chart(
        history, world.clock.now(), lang="es", finding=report.as_json["headline"]
    )
