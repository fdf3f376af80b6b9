"""The therapist's digest in English, Spanish and Russian: complete catalogs with the same keys and
placeholders, the right word forms for every number, dates and lists as each language writes them,
the same numbers and facts in every language, and a chart labelled in the reader's language."""

from __future__ import annotations

import io
import re
import string
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from flows.i18n import CATALOGS, LANGUAGES, number, plural_category, plural_choice
from insights import chart
from insights.chart import render_chart
from insights.digest import build_digest, caption, render_text
from insights.history import ClientHistory
from insights.texts import (
    PREFIX,
    date_time,
    duration,
    explain,
    names,
    short_date,
    text,
    together_tail,
)
from tests.insights.builders import after_last, answered, build, missed

OTHERS = [lang for lang in LANGUAGES if lang != "en"]
CATALOG = {
    lang: {
        key.removeprefix(PREFIX): t for key, t in CATALOGS[lang].items() if key.startswith(PREFIX)
    }
    for lang in LANGUAGES
}
"""The therapist's part of each language's catalog, keyed as `insights.texts.text` reads it."""
BERLIN = ZoneInfo("Europe/Berlin")
PNG = b"\x89PNG\r\n\x1a\n"
Evidence = dict[str, float | int | str]


def fields(template: str) -> list[tuple[str, str]]:
    """(placeholder, format spec) of every `{…}` in a template, in order."""
    return [(name, spec or "") for _, name, spec, _ in string.Formatter().parse(template) if name]


def literal_parts(template: str) -> list[str]:
    return [literal for literal, *_ in string.Formatter().parse(template) if literal.strip()]


# --- the catalogs ---------------------------------------------------------------------------


def test_every_language_has_the_therapist_s_wording() -> None:
    assert LANGUAGES == ("en", "es", "ru")
    assert len(CATALOG["en"]) > 80
    assert all(set(CATALOG[lang]) == set(CATALOG["en"]) for lang in OTHERS)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("value", [0, 1, 2, 5, 11, 21, 22, "2.5", "7,9"])
def test_every_text_can_be_filled_with_any_number(lang: str, value: int | str) -> None:
    """Counts fill every placeholder but the dates, which get a date-time."""
    moment = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    for key, template in CATALOG[lang].items():
        values = {
            name: moment if spec and plural_choice(spec) is None else value
            for name, spec in fields(template)
        }
        filled = text(lang, key, **values)
        assert "{" not in filled and "|" not in filled and "=" not in filled, key


@pytest.mark.parametrize("lang", OTHERS)
def test_signal_sentences_can_be_merged_and_unmerged(lang: str) -> None:
    """Merged entries join sentences with "; " and drop the members' "together" tails: neither
    may occur inside a sentence."""
    tail = together_tail(lang)
    assert tail.strip() and tail not in CATALOG[lang]["name.silence"]
    for key, template in CATALOG[lang].items():
        if not key.startswith("opening."):
            assert "; " not in template, key
        if key != "together":
            assert tail not in template, key


MONTHS = {
    "en": "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
    "diciembre",
    "ru": "января февраля марта апреля мая июня июля августа сентября октября ноября декабря",
}
"""Month names as they follow a day number: in Russian the genitive ('12 марта', not 'март')."""


@pytest.mark.parametrize("lang", LANGUAGES)
def test_month_names_after_a_day_number(lang: str) -> None:
    dates = [short_date(datetime(2026, m, 12, 12, tzinfo=UTC), BERLIN, lang) for m in range(1, 13)]
    joiner = " de " if lang == "es" else " "
    assert dates == [f"12{joiner}{month}" for month in MONTHS[lang].split()]


def test_weekday_names() -> None:
    week = [datetime(2026, 3, 9 + d, 9, tzinfo=UTC) for d in range(7)]  # Monday to Sunday
    assert [date_time(m, UTC, "en").split()[0] for m in week] == [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
    ]  # fmt: skip
    assert [date_time(m, UTC, "es").split()[0] for m in week] == [
        "lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo",
    ]  # fmt: skip
    assert [date_time(m, UTC, "ru").split(",")[0] for m in week] == [
        "понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье",
    ]  # fmt: skip


def test_an_unknown_language_reads_english() -> None:
    assert text("de", "digest.title", alias="A.B.", finding="x") == "Digest for A.B.: x"
    assert duration(60, "de") == "2.5 days"
    moment = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    assert date_time(moment, BERLIN, "de") == "Tue 10 Mar, 18:00"


# --- numbers, words and dates -------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "form"),
    [
        (1, "день"), (2, "дня"), (4, "дня"), (5, "дней"), (11, "дней"), (12, "дней"),
        (14, "дней"), (20, "дней"), (21, "день"), (22, "дня"), (25, "дней"), (101, "день"),
        (111, "дней"), (0, "дней"), ("2,5", "дня"), ("1,5", "дня"), (2.5, "дня"),
    ],
)  # fmt: skip
def test_russian_days_take_the_form_of_their_number(n: int | str | float, form: str) -> None:
    shown = number(n, "ru") if isinstance(n, float) else n
    assert text("ru", "days", n=shown) == f"{shown} {form}"


@pytest.mark.parametrize(
    ("hours", "ru", "es", "en"),
    [
        (1 / 60, "1 минута", "1 minuto", "1 minute"),
        (2 / 60, "2 минуты", "2 minutos", "2 minutes"),
        (11 / 60, "11 минут", "11 minutos", "11 minutes"),
        (21 / 60, "21 минута", "21 minutos", "21 minutes"),
        (1.0, "1 час", "1 hora", "1 hour"),
        (2.0, "2 часа", "2 horas", "2 hours"),
        (5.0, "5 часов", "5 horas", "5 hours"),
        (21.0, "21 час", "21 horas", "21 hours"),
        (23.0, "23 часа", "23 horas", "23 hours"),
        (48.0, "2 дня", "2 días", "2.0 days"),
        (60.0, "2,5 дня", "2,5 días", "2.5 days"),
        (120.0, "5 дней", "5 días", "5.0 days"),
        (21 * 24.0, "21 день", "21 días", "21.0 days"),
        (22 * 24.0, "22 дня", "22 días", "22.0 days"),
    ],
)
def test_durations_in_each_language(hours: float, ru: str, es: str, en: str) -> None:
    assert (duration(hours, "ru"), duration(hours, "es"), duration(hours, "en")) == (ru, es, en)


@pytest.mark.parametrize(
    ("lang", "value", "category"),
    [
        ("en", 1, "one"), ("en", 2, "other"), ("en", "1.0", "other"), ("en", 1.0, "one"),
        ("es", 1, "one"), ("es", 0, "other"), ("es", "1,5", "other"), ("ru", 1, "one"),
        ("ru", 3, "few"), ("ru", 7, "many"), ("ru", 13, "many"), ("ru", 1001, "one"),
        ("ru", "0,5", "other"), ("ru", -2, "few"), ("ru", "several", "other"), ("de", 1, "one"),
    ],
)  # fmt: skip
def test_plural_category_follows_the_language_s_rule(
    lang: str, value: object, category: str
) -> None:
    assert plural_category(lang, value) == category


def test_decimals_use_the_language_s_separator() -> None:
    assert (number(37.5, "en"), number(37.5, "es"), number(37.5, "ru")) == ("37.5", "37,5", "37,5")
    assert (number(36.0, "ru"), number(36, "es"), number("alert", "ru")) == ("36", "36", "alert")


def test_dates_as_each_language_writes_them() -> None:
    moment = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # a Tuesday, 18:00 in Berlin
    assert date_time(moment, BERLIN, "en") == "Tue 10 Mar, 18:00"
    assert date_time(moment, BERLIN, "es") == "martes 10 de marzo, 18:00"
    assert date_time(moment, BERLIN, "ru") == "вторник, 10 марта, 18:00"
    may = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert [short_date(may, BERLIN, lang) for lang in LANGUAGES] == [
        "1 May",
        "1 de mayo",
        "1 мая",
    ]


def test_lists_end_with_the_language_s_and() -> None:
    codes = "silence,slowing,partial"
    assert names(codes, "en") == "unanswered check-ins, slower replies and unfinished check-ins"
    assert names(codes, "es") == (
        "check-ins sin respuesta, respuestas más lentas y check-ins sin terminar"
    )
    assert names(codes, "ru") == "опросы без ответа, более медленные ответы и незаконченные опросы"
    assert names("terse", "ru") == "более скупые комментарии"


def test_explanations_carry_the_numbers_in_the_reader_s_words() -> None:
    since = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)
    missed_run: Evidence = {"reason": "missed", "missed_in_row": 3}
    assert explain("silence", "alert", since, missed_run, BERLIN, "ru") == (
        "3 опроса подряд без ответа (с 12 марта)"
    )
    assert explain("silence", "alert", since, {**missed_run, "missed_in_row": 5}, BERLIN, "ru") == (
        "5 опросов подряд без ответа (с 12 марта)"
    )
    assert explain("silence", "alert", since, missed_run, BERLIN, "es") == (
        "3 check-ins seguidos sin respuesta (desde el 12 de marzo)"
    )
    slowing: Evidence = {"median_delay_hours": 50.4, "baseline_delay_hours": 3.0}
    assert explain("slowing", "watch", since, slowing, BERLIN, "ru") == (
        "Медианное время ответа теперь 2,1 дня, раньше было 3 часа"
    )
    item: Evidence = {"item": "goals", "domain": "goals", "value": 4, "baseline": 8.5, "drop": 4.5}
    assert explain("item_drop", "watch", since, item, BERLIN, "es") == (
        "«trabajamos en lo que yo quería» (objetivos) en 4/10, cuando lo habitual es 8,5"
    )
    with_others: Evidence = {
        "total": 27,
        "cutoff": 36,
        "in_row": 2,
        "with": "falling_alliance,item_drop",
    }
    assert explain("low_alliance", "alert", since, with_others, BERLIN, "ru") == (
        "Общий балл альянса 27/40 — ниже порога 36 уже 2 опроса подряд, а также снижение "
        "оценки альянса и снижение по одному из пунктов"
    )


# --- the digest in each language -----------------------------------------------------------


def all_well() -> ClientHistory:
    return build([answered(38, comment="muy buena sesión") for _ in range(3)], sessions=[-1])


def too_little() -> ClientHistory:
    return build([answered(38)])


def withdrawing() -> ClientHistory:
    """Alliance falling in the goals domain, replies slowing, tension, then three misses."""
    steps = [answered(38, comment="me ayuda mucho") for _ in range(4)]
    steps += [
        answered(31, items={"heard": 8, "goals": 5, "approach": 9, "overall": 9},
                 comment="no sé hacia dónde vamos", delay_hours=20.0),
        answered(29, items={"heard": 8, "goals": 4, "approach": 8, "overall": 9},
                 comment="me cuesta venir", delay_hours=30.0, tension=True,
                 talked_through=False),
        answered(28, items={"heard": 8, "goals": 4, "approach": 8, "overall": 8},
                 comment="не знаю", delay_hours=40.0),
        missed(),
        missed(),
        missed(),
    ]  # fmt: skip
    return build(steps, sessions=[-1, 6, 13])


HISTORIES = {"all_well": all_well, "too_little": too_little, "withdrawing": withdrawing}


def digest_text(history: ClientHistory, lang: str, session: bool = True) -> tuple[str, str]:
    now = after_last(history)
    digest = build_digest(history, now, now + timedelta(hours=3) if session else None, lang=lang)
    return "\n".join(render_text(digest, "Europe/Berlin")), caption(digest, "Europe/Berlin")


def english_sentences() -> set[str]:
    """The fixed wording of every English catalog entry with an English word of four letters or
    more ("check-in" is Spanish too: the clients' catalog uses it)."""
    return {
        part.strip()
        for template in CATALOG["en"].values()
        for part in literal_parts(template)
        if re.search(r"[A-Za-z]{4,}", re.sub(r"(?i)check-ins?", "", part))
    }


def marks(text_: str) -> list[str]:
    """Line by line, the mark a signal (‼ • ·) or an opening (–) starts with, if any."""
    return [line[:1] if line[:1] in "‼•·–" else "" for line in text_.splitlines()]


def numbers_in(text_: str) -> list[float]:
    return sorted(float(n.replace(",", ".")) for n in re.findall(r"\d+(?:[.,]\d+)?", text_))


@pytest.mark.parametrize("lang", OTHERS)
@pytest.mark.parametrize("case", list(HISTORIES))
def test_the_digest_has_no_english_and_the_same_numbers(lang: str, case: str) -> None:
    history = HISTORIES[case]()
    english, _ = digest_text(history, "en")
    translated, cap = digest_text(history, lang)
    for sentence in english_sentences():
        pattern = rf"(?<![\w-]){re.escape(sentence)}(?![\w-])"
        assert not re.search(pattern, translated), sentence
    assert numbers_in(translated) == numbers_in(english)
    assert len(translated.splitlines()) == len(english.splitlines())
    assert marks(translated) == marks(english)
    assert translated.startswith(cap.removesuffix("…").rstrip())


def test_all_well_in_spanish_and_russian() -> None:
    es, _ = digest_text(all_well(), "es")
    assert "Check-ins desde la última sesión: 3 de 3 respondidos" in es
    assert "Sin señales de retirada: 3 de 3 check-ins respondidos, alianza estable en 38/40" in es
    assert "«muy buena sesión»" in es and "Posibles formas" not in es
    ru, _ = digest_text(all_well(), "ru")
    assert "Опросы после прошлой сессии: отвечено 3 из 3" in ru
    assert "Признаков отстранения нет: отвечено 3 из 3 опросов, альянс стабилен — 38/40" in ru
    assert ru.startswith("Сводка по A.B.: Признаков отстранения нет")
    assert "\nСессия: " in ru and "Самочувствие, 11 января: 6/10 (обычно 6)" in ru


def test_too_little_data_in_spanish_and_russian() -> None:
    es, _ = digest_text(too_little(), "es", session=False)
    assert "Todavía hay muy pocos datos: 1 check-in respondido hasta ahora" in es
    assert "No hay ninguna sesión programada" in es
    ru, _ = digest_text(too_little(), "ru", session=False)
    assert "Пока слишком мало данных: ответов на опросы — 1" in ru
    assert "Сессия не назначена" in ru


def test_silence_and_a_falling_alliance_in_spanish_and_russian() -> None:
    history = withdrawing()
    digest = build_digest(history, after_last(history), None, lang="ru")
    # one line per signal, most serious first
    assert [(s.code, s.severity) for s in digest.signals] == [
        ("silence", "alert"),
        ("falling_alliance", "alert"),
        ("item_drop", "alert"),
        ("slowing", "watch"),
    ]
    ru, _ = digest_text(history, "ru")
    assert "‼ ВАЖНО: 3 опроса подряд без ответа (с 26 января)" in ru
    assert "Медианное время ответа теперь 30 часов, раньше было 1 час" in ru
    assert "на 10 баллов ниже исходного уровня клиента (38) уже 3 опроса подряд" in ru
    assert "«работаем над тем, что мне важно» (цели): 4/10, обычно 10" in ru
    assert "(связь 8, цели 4, подход 8, в целом 8)" in ru
    assert ru.startswith("Сводка по A.B.: 3 опроса пропущено; альянс снижается 2 недели")
    assert "Слова клиента:\n22 января: «me cuesta venir»\n25 января: «не знаю»" in ru
    assert "Вернитесь вместе к целям терапии" in ru
    es, _ = digest_text(history, "es")
    assert "‼ ALERTA: 3 check-ins seguidos sin respuesta (desde el 26 de enero)" in es
    assert "10 puntos por debajo de su propia línea base (38) en 3 check-ins seguidos" in es
    assert "En palabras del cliente:\n22 de enero: «me cuesta venir»\n25 de enero: «не знаю»" in es
    assert "Revisa los objetivos en conjunto" in es
    for lang, text_ in (("es", es), ("ru", ru)):
        # each signal keeps at most one "together with" tail, as in English
        for line in text_.splitlines():
            assert line.count(together_tail(lang)) <= 1, line


# --- the chart ------------------------------------------------------------------------------


def test_the_chart_in_russian_is_a_valid_png_with_its_own_labels() -> None:
    history = withdrawing()
    now = after_last(history)
    english = render_chart(history, now)
    russian = render_chart(history, now, lang="ru")
    assert russian.startswith(PNG) and 20_000 <= len(russian) <= 200_000
    image = Image.open(io.BytesIO(russian))
    image.verify()  # every chunk's checksum and the compressed rows
    assert image.size == (900, 1200) and image.format == "PNG"
    assert russian != english != render_chart(history, now, lang="es")
    assert render_chart(history, now) == english  # switching back leaves no Russian behind
    empty = render_chart(build([]), now, lang="ru")
    assert Image.open(io.BytesIO(empty)).size == (900, 1200)


def test_chart_date_ticks_are_in_the_reader_s_language() -> None:
    start = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    end = start + timedelta(days=20)
    ticks_en, labels_en = chart._date_ticks(start, end, BERLIN)
    ticks_ru, labels_ru = chart._date_ticks(start, end, BERLIN, "ru")
    assert ticks_en == ticks_ru
    assert labels_en == ["5 Jan", "12 Jan", "19 Jan"]
    assert labels_ru == ["5 янв.", "12 янв.", "19 янв."]
    assert chart._date_ticks(start, end, BERLIN, "es")[1] == ["5 ene", "12 ene", "19 ene"]


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "2 check-ins unanswered since 26 Jan, though 1 session was held in between",
        ),
        (
            "es",
            "2 check-ins sin respuesta desde el 26 de enero, aunque entretanto hubo 1 sesión "
            "en la agenda",
        ),
        ("ru", "2 опроса без ответа с 26 января, хотя за это время по календарю прошла 1 сессия"),
    ],
)
def test_silence_through_a_session_in_every_language(lang: str, expected: str) -> None:
    evidence: dict[str, float | int | str] = {
        "cadence_days": 3.0,
        "missed_in_row": 2,
        "sessions": 1,
        "days_since_reply": 7.0,
        "reason": "sessions",
    }
    since = datetime(2026, 1, 26, 18, 0, tzinfo=UTC)
    assert explain("silence", "watch", since, evidence, UTC, lang) == expected
    more = explain("silence", "watch", since, {**evidence, "sessions": 2}, UTC, lang)
    assert more != expected and "2" in more.split(",", 1)[1]
