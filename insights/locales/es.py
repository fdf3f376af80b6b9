"""Spanish: written for a Spanish-speaking clinician, tuteo and neutral between Spain and Latin
America (as the client catalogs are); "check-in" is the word the clients see too."""

from __future__ import annotations

from typing import Final

DECIMAL: Final = ","
MONTHS: Final = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
    "octubre", "noviembre", "diciembre",
)  # fmt: skip
MONTHS_SHORT: Final = (
    "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic",
)  # fmt: skip
WEEKDAYS: Final = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")

CATALOG: Final[dict[str, str]] = {
    # signal explanations
    "silence.missed": "{missed} {missed:check-in seguido|check-ins seguidos} sin respuesta "
    "(desde el {since})",
    "silence.quiet": "Lleva {days} {days:día|días} sin responder: más de {cadences} "
    "{cadences:intervalo|intervalos} entre check-ins",
    "silence.pattern": "Desde el {since} responde cada vez menos: de los últimos {window} "
    "check-ins, {missed} sin respuesta y {late} {late:respondido|respondidos} mucho más tarde "
    "de lo habitual",
    "silence.rate": "Ha respondido {answered} de los últimos {window} check-ins, cuando antes "
    "respondía el {rate_before}%",
    "slowing": "Ahora tarda una mediana de {recent} en responder (antes, {base})",
    "low_alliance": "Puntuación total de alianza {total}/{max}, por debajo del punto de corte "
    "({cutoff})",
    "low_alliance.run": "Puntuación total de alianza {total}/{max}, por debajo del punto de "
    "corte ({cutoff}) en {in_row} {in_row:check-in seguido|check-ins seguidos}",
    "falling_alliance.baseline": "Puntuación total de alianza {total}/{max}, {drop} "
    "{drop:punto|puntos} por debajo de su propia línea base ({baseline})",
    "falling_alliance.sustained": "Puntuación total de alianza {total}/{max}, {drop} "
    "{drop:punto|puntos} por debajo de su propia línea base ({baseline}) en {sustained} "
    "{sustained:check-in seguido|check-ins seguidos}",
    "falling_alliance.trend": "La alianza baja en los últimos {window} check-ins: "
    "{first} → {total}",
    "item_drop": "«{item}» ({domain}) en {value}/10, cuando lo habitual es {baseline}",
    "item_drop.low": "«{item}» ({domain}) en {value}/10",
    "partial": "{count} de los últimos {window} check-ins se empezaron y quedaron sin terminar",
    "partial.one": "El último check-in se empezó y quedó sin terminar",
    "terse.stopped": "Ningún comentario en los últimos {window} check-ins, cuando al principio "
    "comentaba en el {rate_before}%",
    "terse.shrinking": "Comentarios cada vez más breves: {chars_recent} "
    "{chars_recent:carácter|caracteres} de media, frente a {chars_before} antes",
    "ceiling": "Puntuación máxima en los últimos {in_row} check-ins y ningún comentario: "
    "quizá le cueste expresar críticas",
    "rupture_reported": "El {since} indicó tensión o un malentendido contigo, y aún no se ha "
    "hablado",
    "rupture_reported.repeated": "Ha indicado tensión o un malentendido contigo {count} "
    "{count:vez|veces} últimamente, la última el {since}, y aún no se ha hablado",
    "rupture_reported.resolved": "El {since} indicó tensión o un malentendido contigo, y dice "
    "que ya se ha hablado",
    "confrontation": "Un comentario muy negativo sobre la terapia el {since}",
    "confrontation.repeated": "{count} {count:comentario muy negativo|comentarios muy "
    "negativos} sobre la terapia últimamente, el último el {since}",
    "paused": "Pausó los check-ins el {since}",
    "stopped": "Dejó los check-ins el {since}",
    "unreachable": "Bloqueó el bot el {since}: los mensajes ya no le llegan",
    "together": "{text}, junto con {others}",
    # short names, used when signals are combined
    "name.silence": "check-ins sin respuesta",
    "name.slowing": "respuestas más lentas",
    "name.low_alliance": "una puntuación de alianza baja",
    "name.falling_alliance": "una puntuación de alianza en descenso",
    "name.item_drop": "la caída de un ítem",
    "name.partial": "check-ins sin terminar",
    "name.terse": "comentarios más escuetos",
    "name.ceiling": "puntuaciones máximas",
    "name.rupture_reported": "tensión señalada",
    "name.confrontation": "un comentario negativo",
    "name.paused": "una pausa",
    "name.stopped": "el abandono de los check-ins",
    "name.unreachable": "el bloqueo del bot",
    "list.and": " y ",
    # item names
    "item.heard": "me escuchó y me respetó",
    "item.goals": "trabajamos en lo que yo quería",
    "item.approach": "el enfoque me encaja",
    "item.overall": "en general",
    "domain.bond": "vínculo",
    "domain.goals": "objetivos",
    "domain.approach": "enfoque",
    "domain.overall": "global",
    # durations and dates
    "minutes": "{n} {n:minuto|minutos}",
    "hours": "{n} {n:hora|horas}",
    "hour": "1 hora",
    "days": "{n} {n:día|días}",
    "date.day_month": "{day} de {month}",
    "date.weekday_day_time": "{weekday} {date}, {time}",
    # digest
    "digest.title": "Resumen de check-ins: {alias}",
    "digest.session": "Sesión: {when}",
    "digest.no_session": "No hay ninguna sesión programada",
    "digest.counts": "Check-ins desde la última sesión: {answered} de {sent} "
    "{sent:respondido|respondidos}",
    "digest.counts.none": "No ha habido check-ins desde la última sesión",
    "digest.all_well": "Sin señales de retirada: {answered} de {sent} "
    "{sent:check-in respondido|check-ins respondidos}, alianza estable en {total}/{max}",
    "digest.all_well.no_total": "Sin señales de retirada: {answered} de {sent} "
    "{sent:check-in respondido|check-ins respondidos}",
    "digest.too_little": "Todavía hay muy pocos datos: {answered} "
    "{answered:check-in respondido|check-ins respondidos} hasta ahora",
    "digest.signals": "Lo que llama la atención:",
    "digest.comments": "Comentarios:",
    "digest.comment": "{date}: «{comment}»",
    "digest.openings": "Posibles formas de abrir el tema:",
    "digest.alert": "ALERTA",
    "digest.watch": "vigilar",
    "digest.info": "nota",
    "digest.latest": "Última puntuación total de alianza: {total}/{max}",
    "digest.flagged": "Ítems con {flag} o menos: {items}",
    "digest.flagged_item": "«{item}»",
    # openings, from rupture-repair practice
    "opening.silence": "Pregunta por lo práctico y por posibles sentimientos encontrados "
    "respecto a venir, sin culpar: «He notado que últimamente los check-ins se han quedado sin "
    "respuesta. ¿Cómo está encajando esto en tu semana?»",
    "opening.metacommunication": "Invita a hablar abiertamente de la relación: «Tengo la "
    "sensación de que algo entre nosotros puede haber cambiado. ¿Te parece que lo miremos "
    "juntos?»",
    "opening.goals": "Revisa los objetivos en conjunto: «¿Seguimos trabajando en lo que más te "
    "importa ahora mismo?»",
    "opening.rationale": "Explica el sentido de la tarea o del enfoque que le está costando, y "
    "pregunta hasta qué punto le encaja.",
    "opening.validate": "Reconoce y valida cómo vivió lo que no fue bien, y asume tu parte sin "
    "ponerte a la defensiva.",
    "opening.ceiling": "Pónselo fácil para criticar: «¿Hay algo que yo podría hacer de otra "
    "manera para que esto te resulte más útil?»",
    "opening.resume": "Pregunta si le vienen bien el momento y la frecuencia de los check-ins, "
    "y si la pausa dice algo sobre la terapia.",
    # the chart
    "chart.title": "{alias}: check-ins de alianza",
    "chart.total": "total /{max}",
    "chart.items": "ítems /{max}",
    "chart.cutoff": "umbral {cutoff}",
    "chart.missed": "× sin respuesta",
    "chart.unfinished": "○ sin terminar",
    "chart.empty": "Aún no hay check-ins",
    "chart.item.heard": "vínculo",
    "chart.item.goals": "objetivos",
    "chart.item.approach": "enfoque",
    "chart.item.overall": "global",
}
