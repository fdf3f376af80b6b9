"""Therapist-facing wording of `insights`, one module per language (`en`, `es`, `ru`).

Each module holds `CATALOG` (key -> template), the month and weekday names its dates use and its
decimal separator; `insights.texts` reads them. Every language has the same keys and the same
`{placeholders}` as English (a test holds them to it). A count that changes the words around it
is written `{n:form|form}` — two forms (one, other) in English and Spanish, three in Russian
(one, few, many; 1 день, 2 дня, 5 дней) — and `insights.texts` picks the form for the number.
"""
