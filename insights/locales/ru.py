"""Russian: written for a Russian-speaking clinician, addressed with «вы»; check-ins are «опросы»,
the word the clients see, and the digest is a «сводка», as in the therapist commands."""

from __future__ import annotations

from typing import Final

DECIMAL: Final = ","
MONTHS: Final = (
    "января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября",
    "октября", "ноября", "декабря",
)  # fmt: skip
"""Genitive, as after a day number: «12 марта»."""
MONTHS_SHORT: Final = (
    "янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек",
)  # fmt: skip
WEEKDAYS: Final = (
    "понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье",
)  # fmt: skip

CATALOG: Final[dict[str, str]] = {
    # signal explanations
    "silence.missed": "{missed} {missed:опрос|опроса|опросов} подряд без ответа (с {since})",
    "silence.quiet": "Нет ответа уже {days} {days:день|дня|дней} — дольше, чем {cadences} "
    "{cadences:интервал|интервала|интервалов} между опросами",
    "silence.pattern": "С {since} клиент всё реже отвечает на опросы: из последних {window} — "
    "{missed} без ответа, {late} с ответом намного позже обычного",
    "silence.rate": "Из последних {window} {window:опроса|опросов|опросов} отвечено {answered}, "
    "а раньше — {rate_before}%",
    "slowing": "Медианное время ответа теперь {recent}, раньше было {base}",
    "low_alliance": "Общий балл альянса {total}/{max} — ниже порога {cutoff}",
    "low_alliance.run": "Общий балл альянса {total}/{max} — ниже порога {cutoff} уже {in_row} "
    "{in_row:опрос|опроса|опросов} подряд",
    "falling_alliance.baseline": "Общий балл альянса {total}/{max} — на {drop} "
    "{drop:балл|балла|баллов} ниже исходного уровня клиента ({baseline})",
    "falling_alliance.sustained": "Общий балл альянса {total}/{max} — на {drop} "
    "{drop:балл|балла|баллов} ниже исходного уровня клиента ({baseline}) уже {sustained} "
    "{sustained:опрос|опроса|опросов} подряд",
    "falling_alliance.trend": "Общий балл альянса снижается на протяжении последних {window} "
    "{window:опроса|опросов|опросов}: {first} → {total}",
    "item_drop": "«{item}» ({domain}): {value}/10, обычно {baseline}",
    "item_drop.low": "«{item}» ({domain}): {value}/10",
    "partial": "{count} из последних {window} {window:опроса|опросов|опросов} начаты, "
    "но не закончены",
    "partial.one": "Последний опрос начат, но не закончен",
    "terse.stopped": "Ни одного комментария в последних {window} "
    "{window:опросе|опросах|опросах}, хотя в первых комментарии были в {rate_before}% случаев",
    "terse.shrinking": "Комментарии становятся короче: в среднем {chars_recent} "
    "{chars_recent:символ|символа|символов}, раньше — {chars_before}",
    "ceiling": "Максимальные оценки в последних {in_row} {in_row:опросе|опросах|опросах} и ни "
    "одного комментария: возможно, клиенту трудно высказать критику",
    "rupture_reported": "{since} клиент сообщил о напряжении или недопонимании между вами — "
    "это пока не проговорено",
    "rupture_reported.repeated": "Клиент {count} {count:раз|раза|раз} за последнее время "
    "сообщал о напряжении или недопонимании между вами, последний раз {since} — это пока не "
    "проговорено",
    "rupture_reported.resolved": "{since} клиент сообщил о напряжении или недопонимании между "
    "вами и отметил, что это удалось обсудить",
    "confrontation": "Резко негативный комментарий о терапии от {since}",
    "confrontation.repeated": "{count} {count:резко негативный комментарий|резко негативных "
    "комментария|резко негативных комментариев} о терапии за последнее время, последний — "
    "от {since}",
    "paused": "Клиент поставил опросы на паузу {since}",
    "stopped": "Клиент отказался от опросов {since}",
    "unreachable": "Клиент заблокировал бота {since}: сообщения больше не доходят",
    "together": "{text}, а также {others}",
    # short names, used when signals are combined
    "name.silence": "опросы без ответа",
    "name.slowing": "более медленные ответы",
    "name.low_alliance": "низкая оценка альянса",
    "name.falling_alliance": "снижение оценки альянса",
    "name.item_drop": "снижение по одному из пунктов",
    "name.partial": "незаконченные опросы",
    "name.terse": "более скупые комментарии",
    "name.ceiling": "максимальные оценки",
    "name.rupture_reported": "сообщение о напряжении",
    "name.confrontation": "негативный комментарий",
    "name.paused": "пауза",
    "name.stopped": "отказ от опросов",
    "name.unreachable": "блокировка бота",
    "list.and": " и ",
    # item names
    "item.heard": "меня слышат и уважают",
    "item.goals": "работаем над тем, что мне важно",
    "item.approach": "мне подходит, как со мной работают",
    "item.overall": "в целом",
    "domain.bond": "связь",
    "domain.goals": "цели",
    "domain.approach": "подход",
    "domain.overall": "общая оценка",
    # durations and dates
    "minutes": "{n} {n:минута|минуты|минут}",
    "hours": "{n} {n:час|часа|часов}",
    "hour": "1 час",
    "days": "{n} {n:день|дня|дней}",
    "date.day_month": "{day} {month}",
    "date.weekday_day_time": "{weekday}, {date}, {time}",
    # digest
    "digest.title": "Сводка по опросам: {alias}",
    "digest.session": "Сессия: {when}",
    "digest.no_session": "Сессия не назначена",
    "digest.counts": "Опросы после прошлой сессии: отвечено {answered} из {sent}",
    "digest.counts.none": "После прошлой сессии опросов не было",
    "digest.all_well": "Признаков отстранения нет: отвечено {answered} из {sent} "
    "{sent:опроса|опросов|опросов}, альянс стабилен — {total}/{max}",
    "digest.all_well.no_total": "Признаков отстранения нет: отвечено {answered} из {sent} "
    "{sent:опроса|опросов|опросов}",
    "digest.too_little": "Пока слишком мало данных: ответов на опросы — {answered}",
    "digest.signals": "На что обратить внимание:",
    "digest.comments": "Комментарии клиента:",
    "digest.comment": "{date}: «{comment}»",
    "digest.openings": "Как можно начать разговор:",
    "digest.alert": "ВАЖНО",
    "digest.watch": "следить",
    "digest.info": "к сведению",
    "digest.latest": "Последний общий балл альянса: {total}/{max}",
    "digest.flagged": "Пункты с оценкой {flag} и ниже: {items}",
    "digest.flagged_item": "«{item}»",
    # openings, from rupture-repair practice
    "opening.silence": "Без упрёка расспросите о практических сложностях и о смешанных "
    "чувствах по поводу встреч: «Я вижу, что в последнее время опросы остаются без ответа. "
    "Как вам сейчас удаётся вписывать нашу работу в свою неделю?»",
    "opening.metacommunication": "Предложите открыто поговорить о ваших отношениях: «Мне "
    "кажется, что-то между нами могло измениться. Давайте посмотрим на это вместе?»",
    "opening.goals": "Вернитесь вместе к целям терапии: «Мы по-прежнему работаем над тем, что "
    "для вас сейчас важнее всего?»",
    "opening.rationale": "Объясните смысл задания или подхода, которые даются клиенту тяжело, "
    "и спросите, насколько они ему подходят.",
    "opening.validate": "Признайте и валидируйте переживания клиента о том, что пошло не так, "
    "и возьмите на себя свою часть ответственности, не оправдываясь.",
    "opening.ceiling": "Помогите клиенту высказать критику: «Что в нашей работе стоило бы "
    "изменить, чтобы она была для вас полезнее?»",
    "opening.resume": "Спросите, удобны ли время и частота опросов и не связана ли пауза с тем, "
    "что происходит в терапии.",
    # the chart
    "chart.title": "{alias}: опросы об альянсе",
    "chart.total": "общий балл /{max}",
    "chart.items": "пункты /{max}",
    "chart.cutoff": "порог {cutoff}",
    "chart.missed": "× пропущен",
    "chart.unfinished": "○ не закончен",
    "chart.empty": "Опросов пока не было",
    "chart.item.heard": "связь",
    "chart.item.goals": "цели",
    "chart.item.approach": "подход",
    "chart.item.overall": "в целом",
}
