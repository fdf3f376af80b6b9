"""The pre-session digest: what a therapist should know about a client, in a minute of reading.

`build_digest` gathers the facts (check-ins answered since the last session, risk since then,
ranked signals, the latest answers and wellbeing, comments, suggested openings); `render_text`
turns them into one Telegram message led by a headline that states the finding, `caption` into
the chart's short caption, `to_json` into data for the CLI. The digest says plainly when all is
well and when there is too little data to say anything, and leaves out what is stale, empty or
said already: alert fatigue is a failure mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any, Final, Literal

from flows import i18n
from flows.i18n import number
from flows.instruments import Instrument
from flows.visible import visible_text
from insights import config, headline
from insights.history import Acknowledgement, CheckinRecord, ClientHistory, CrisisEvent, zone_or_utc
from insights.outcomes import OutcomeTrend, outcome_trends
from insights.signals import SEVERITY_RANK, Signal, detect, rank
from insights.texts import date_time, short_date, strip_together, text
from insights.thresholds import Thresholds

MESSAGE_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
MAX_COMMENTS: Final = 10
"""The most recent comments shown; older ones stay in the export."""
COMMENT_SHOWN: Final = 600
"""A longer comment is shown up to a word boundary near here, with "…" (whole in the export)."""
WELLBEING_LOW: Final = 3
"""A latest wellbeing answer at or below this (of 10) goes into the headline."""
WELLBEING_DROP: Final = 3
"""...as does one this many points below the client's usual."""

_OPENINGS_BY_CODE: Final[dict[str, tuple[str, ...]]] = {
    "silence": ("opening.silence",),
    "slowing": ("opening.silence",),
    "partial": ("opening.silence",),
    "terse": ("opening.silence", "opening.metacommunication"),
    "paused": ("opening.resume",),
    "stopped": ("opening.resume", "opening.silence"),
    "unreachable": ("opening.silence",),
    "falling_alliance": ("opening.metacommunication",),
    "low_alliance": ("opening.metacommunication",),
    "rupture_reported": ("opening.validate", "opening.metacommunication"),
    "confrontation": ("opening.validate", "opening.metacommunication"),
    "ceiling": ("opening.ceiling",),
}
_OPENINGS_BY_DOMAIN: Final[dict[str, str]] = {
    "goals": "opening.goals",
    "approach": "opening.rationale",
    "bond": "opening.validate",
    "overall": "opening.metacommunication",
}
_MARKS: Final[dict[str, str]] = {"alert": "‼", "watch": "•", "info": "·"}

RiskKind = Literal["crisis", "safety_item", "blocked"]


@dataclass(frozen=True)
class RiskItem:
    """Something since the last session a clinician must not miss: an urgent alert (risk
    language, or a positive answer to the safety question) or the client blocking the bot.

    Kind and time only, never the client's words: shown whatever the comments setting.
    """

    kind: RiskKind
    at: datetime
    category: str | None = None
    alerted: str | None = None
    ack: Acknowledgement | None = None

    def to_dict(self) -> dict[str, Any]:
        ack = self.ack
        return {
            "kind": self.kind,
            "at": self.at.isoformat(),
            "category": self.category,
            "alerted": self.alerted,
            "acknowledged": None
            if ack is None
            else {"by": ack.by, "at": ack.at.isoformat() if ack.at else None},
        }


@dataclass(frozen=True)
class FlagAcknowledged:
    """An earlier digest's alert-level flag, still showing, was acknowledged: by whom (their
    name), when, and how (`seen`, `contacted` or `not_concern`)."""

    by: str
    at: datetime
    choice: str

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "at": self.at.isoformat(), "choice": self.choice}


@dataclass(frozen=True)
class TalkRequest:
    """The client asked (`/talk`, or the button after a check-in) to talk about how the work is
    going; `words` their optional sentence, shown only where comments travel in digests."""

    at: datetime
    words: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "words": self.words}


@dataclass(frozen=True)
class Digest:
    """Everything the therapist is shown about one client before a session.

    Counts are for the check-ins sent since the last session before `now` (or since the start).
    `latest_total` / `baseline_total` are the alliance totals behind "steady at 38/40".
    """

    client: str
    alias: str
    timezone: str
    now: datetime
    session_at: datetime | None
    lang: str
    answered: int
    sent: int
    answered_total: int
    signals: tuple[Signal, ...]
    comments: tuple[tuple[datetime, str], ...]
    openings: tuple[str, ...]
    all_well: bool
    too_little_data: bool
    latest_total: int | None
    baseline_total: float | None
    flagged_items: tuple[str, ...]
    risks: tuple[RiskItem, ...] = ()
    since_session: bool = True
    """Whether `risks` (and the counts) run from a previous session, or from the start."""
    talk_requests: tuple[TalkRequest, ...] = ()
    """Requests to talk that no pre-session digest has carried yet: pinned at the top."""
    latest_at: datetime | None = None
    latest_scores: tuple[tuple[str, int | None], ...] = ()
    """The alliance items of the latest complete check-in (at `latest_at`), in asking order."""
    wellbeing: tuple[tuple[datetime, int], ...] = ()
    """Every wellbeing answer up to `now`: the outcome beside the alliance."""
    wellbeing_usual: float | None = None
    """The mean of the client's first 2–4 wellbeing answers, not counting the latest."""
    headline: str = ""
    """The finding in a few words ("Alliance falling for 3 weeks; 2 check-ins missed")."""
    outcomes: tuple[OutcomeTrend, ...] = ()
    """PHQ-9, GAD-7 (or a practice's own outcome measure): latest, band, reliable change."""
    flag_ack: FlagAcknowledged | None = None
    """The acknowledgement of the flag these alert-level signals continue (set by the caller)."""

    @property
    def alert_codes(self) -> tuple[str, ...]:
        """The codes of the alert-level signals: what a flag raised by this digest is about."""
        return tuple(s.code for s in self.signals if s.severity == "alert")

    @property
    def wellbeing_latest(self) -> tuple[datetime, int] | None:
        return self.wellbeing[-1] if self.wellbeing else None

    @property
    def level(self) -> str:
        """ "alert", "watch", "info" or "none": any risk item makes the digest an alert."""
        if self.risks:
            return "alert"
        for severity in ("alert", "watch", "info"):
            if any(signal.severity == severity for signal in self.signals):
                return severity
        return "none"


def _total(record: CheckinRecord) -> int | None:
    total = 0
    for item in config.ALLIANCE_ITEMS:
        value = record.scores.get(item)
        if value is None:
            return None
        total += value
    return total


def build_digest(
    history: ClientHistory,
    now: datetime,
    session_at: datetime | None,
    thresholds: Thresholds | None = None,
    lang: str = "en",
    include_comments: bool = True,
    *,
    zone: tzinfo | None = None,
    talk_requests: Sequence[TalkRequest] = (),
    instruments: Sequence[Instrument] | None = None,
) -> Digest:
    """The digest as it would be sent at `now`, using nothing recorded after `now`.

    `zone` is the reader's time zone for dates inside signal sentences (default: the client's);
    `instruments` the outcome measures to look for (default: the shipped PHQ-9 and GAD-7).
    """
    th = thresholds or Thresholds()
    since = max((s for s in history.sessions if s < now), default=None)
    period = [
        c for c in history.checkins if c.sent_at <= now and (since is None or c.sent_at > since)
    ]
    answered_in_period = [c for c in period if _answered_by(c, now)]
    risks = risk_items(history, now, since)
    ranked = rank(needs_discussing(detect(history, now, th, lang=lang, zone=zone), th))
    signals = tuple(
        _without_inner_tails(signal, lang)
        for signal in _worth_reading(ranked, risks, bool(answered_in_period))
    )
    complete = [c for c in history.checkins if _answered_by(c, now)]
    totals = [t for c in complete if (t := _total(c)) is not None]
    base_n = min(th.baseline_max, len(totals))
    baseline = sum(totals[:base_n]) / base_n if base_n >= th.baseline_min else None
    rated = [c for c in complete if any(c.scores.get(i) is not None for i in config.ALLIANCE_ITEMS)]
    latest = rated[-1] if rated else None
    flagged = tuple(
        item
        for item in config.ALLIANCE_ITEMS
        if latest is not None
        and (value := latest.scores.get(item)) is not None
        and value <= th.item_flag
    )
    comments: tuple[tuple[datetime, str], ...] = ()
    if include_comments:
        # What the client wrote, as they saw it: invisible characters (bidi overrides, zero
        # widths) could reorder or hide words in the therapist's chat, in old rows too.
        commented = [
            (c.answered_at, seen)
            for c in period
            if c.comment
            and (seen := visible_text(c.comment).strip())
            and c.answered_at is not None
            and c.answered_at <= now
        ]
        comments = tuple(commented[-MAX_COMMENTS:])
    talks = tuple(
        TalkRequest(r.at, _visible(r.words) if include_comments else None)
        for r in sorted(talk_requests, key=lambda r: r.at)
        if r.at <= now
    )
    wellbeing = wellbeing_series(history, now)
    serious = bool(risks) or any(s.severity != "info" for s in signals)
    too_little = not serious and len(complete) < th.baseline_min
    digest = Digest(
        client=history.client,
        alias=visible_text(history.alias),
        timezone=history.timezone,
        now=now,
        session_at=session_at,
        lang=lang,
        answered=len(answered_in_period),
        sent=len(period),
        answered_total=len(complete),
        signals=signals,
        comments=comments,
        openings=choose_openings(signals, lang),
        all_well=not serious and not too_little,
        too_little_data=too_little,
        latest_total=totals[-1] if totals else None,
        baseline_total=baseline,
        flagged_items=flagged,
        risks=risks,
        since_session=since is not None,
        talk_requests=talks,
        latest_at=latest.answered_at if latest is not None else None,
        latest_scores=(
            tuple((item, latest.scores.get(item)) for item in config.ALLIANCE_ITEMS)
            if latest is not None
            else ()
        ),
        wellbeing=wellbeing,
        wellbeing_usual=_usual([value for _, value in wellbeing[:-1]], th),
        outcomes=outcome_trends(history, now, lang, instruments),
    )
    return replace(digest, headline=_headline(digest, zone or history.zone()))


def wellbeing_series(history: ClientHistory, now: datetime) -> tuple[tuple[datetime, int], ...]:
    """(when answered, 0–10) for every wellbeing answer known at `now`, unfinished check-ins too."""
    series = []
    for record in history.checkins:
        value = record.scores.get(config.WELLBEING_ITEM)
        at = record.answered_at
        if value is not None and at is not None and at <= now:
            series.append((at, value))
    return tuple(series)


def _usual(values: list[int], th: Thresholds) -> float | None:
    """The client's usual: the mean of their first 2–4 answers (None with fewer than 2)."""
    n = min(th.baseline_max, len(values))
    return sum(values[:n]) / n if n >= th.baseline_min else None


def needs_discussing(signals: list[Signal], th: Thresholds) -> list[Signal]:
    """The detector's signals with the digest's own alerts: a steep fall from the baseline
    (37 to 26 is 11 points, over two reliable changes) or a total that has stayed under the
    cut-off for weeks is something to take up in the session, whether or not the client is
    about to leave. The drop-out detector (and the backtest) keeps them at `watch`: there they
    would alert a third of the clients who stay."""
    out = []
    for signal in signals:
        e = signal.evidence
        steep = (
            signal.code == "falling_alliance"
            and e.get("reason") == "baseline"
            and 0 < th.digest_alert_drop * th.reliable_change <= float(e.get("drop", 0))
        )
        stuck = signal.code == "low_alliance" and 0 < th.digest_low_in_row <= int(
            e.get("in_row", 0)
        )
        out.append(replace(signal, severity="alert") if steep or stuck else signal)
    return out


def _worth_reading(
    ranked: list[Signal], risks: tuple[RiskItem, ...], answered_lately: bool
) -> list[Signal]:
    """The signals without what the digest says elsewhere or what is not news.

    Blocking is in the risk block already; a low total beside a fall from the baseline is the
    same number twice (the scores line says it is under the cut-off); "no comments lately"
    when nothing was answered since the last session says nothing the missed check-ins do not.
    """
    falling = max(
        (SEVERITY_RANK[s.severity] for s in ranked if s.code == "falling_alliance"), default=-1
    )
    blocked = any(item.kind == "blocked" for item in risks)
    kept = []
    for signal in ranked:
        if signal.code == "unreachable" and blocked:
            continue
        if signal.code == "low_alliance" and SEVERITY_RANK[signal.severity] <= falling:
            continue
        if signal.code == "terse" and not answered_lately:
            continue
        kept.append(signal)
    return kept


def _visible(words: str | None) -> str | None:
    return (visible_text(words).strip() or None) if words else None


def risk_items(
    history: ClientHistory, now: datetime, since: datetime | None
) -> tuple[RiskItem, ...]:
    """Urgent alerts and blocking after `since` (the last session; None: from the start), up to
    `now`, in time order."""

    def within(at: datetime) -> bool:
        return at <= now and (since is None or at > since)

    items = [_crisis_item(c) for c in history.crises if within(c.at)]
    items += [
        RiskItem("blocked", e.at) for e in history.events if e.kind == "blocked" and within(e.at)
    ]
    return tuple(sorted(items, key=lambda item: item.at))


def _crisis_item(crisis: CrisisEvent) -> RiskItem:
    kind: RiskKind = "safety_item" if crisis.source == "safety_item" else "crisis"
    return RiskItem(kind, crisis.at, crisis.category, crisis.alerted, crisis.ack)


def _without_inner_tails(signal: Signal, lang: str) -> Signal:
    """A merged entry lists its members anyway: drop their "together with …" tails.

    `rank_and_merge` does this for English sentences; this does it in the reader's language (the
    members are joined with "; ", which no sentence of a catalog contains).
    """
    if not signal.merged or lang == "en":
        return signal
    lead, *members = signal.explanation.split("; ")
    explanation = "; ".join([lead, *(strip_together(member, lang) for member in members)])
    return signal if explanation == signal.explanation else replace(signal, explanation=explanation)


def _answered_by(record: CheckinRecord, now: datetime) -> bool:
    """Fully answered at or before `now` (a started-and-abandoned check-in is not)."""
    if record.answered_at is None or record.answered_at > now or record.status == "partial":
        return False
    return record.completed_at is None or record.completed_at <= now


def choose_openings(signals: tuple[Signal, ...], lang: str = "en") -> tuple[str, ...]:
    """Two or three openings from rupture-repair practice, in the order of the signals."""
    if not signals:
        return ()
    keys: list[str] = []
    for signal in signals:
        for code in (signal.code, *signal.merged):
            for key in _keys_for(code, signal):
                if key not in keys:
                    keys.append(key)
    for fallback in ("opening.metacommunication", "opening.validate"):
        if len(keys) >= 2:
            break
        if fallback not in keys:
            keys.append(fallback)
    return tuple(text(lang, key) for key in keys[:3])


def _keys_for(code: str, signal: Signal) -> tuple[str, ...]:
    if code == "item_drop":
        domain = signal.evidence.get("domain") or signal.evidence.get("item_drop.domain")
        return (_OPENINGS_BY_DOMAIN.get(str(domain), "opening.metacommunication"),)
    return _OPENINGS_BY_CODE.get(code, ())


def _lines(
    digest: Digest,
    zone: tzinfo,
    comments: int | None = None,
    risks: int | None = None,
    talks: int | None = None,
) -> list[str]:
    """The digest's lines: headline, risk, when, signals, latest answers, words, openings.

    `comments`, `risks` and `talks` limit how many of the most recent are shown (to fit one
    message).
    """
    lang = digest.lang
    lines = [_headline_line(digest)]
    if digest.risks:
        since = "digest.risk.since_session" if digest.since_session else "digest.risk.since_start"
        lines.append(text(lang, since))
        shown_risks = digest.risks if risks is None else digest.risks[len(digest.risks) - risks :]
        if len(shown_risks) < len(digest.risks):
            lines.append(text(lang, "digest.risk.more", n=len(digest.risks) - len(shown_risks)))
        lines.extend(_risk_line(item, zone, lang) for item in shown_risks)
        lines.append("")
    everyone = digest.talk_requests
    shown_talks = everyone if talks is None else everyone[len(everyone) - talks :]
    for talk in shown_talks:
        lines.append(text(lang, "digest.talk", when=date_time(talk.at, zone, lang)))
        if talk.words:
            lines.append(text(lang, "digest.talk.words", words=talk.words))
    if len(shown_talks) < len(digest.talk_requests):
        n = len(digest.talk_requests) - len(shown_talks)
        lines.append(text(lang, "digest.talk.more", n=n))
    if digest.talk_requests:
        lines.append("")
    lines += _when(digest, zone)
    if digest.signals and not digest.all_well:
        lines += ["", text(lang, "digest.signals")]
        lines.extend(_signal_line(signal, zone, lang) for signal in digest.signals)
        if digest.flag_ack is not None:
            lines.append(_flag_ack_line(digest.flag_ack, zone, lang))
    elif digest.signals:
        lines.append("")
        lines.extend(f"{_MARKS[s.severity]} {s.explanation}" for s in digest.signals)
    answers = _answer_lines(digest, zone)
    if answers:
        lines += ["", *answers]
    shown = digest.comments
    if comments is not None:
        shown = shown[len(shown) - comments :]
    if digest.comments:
        lines += ["", text(lang, "digest.comments")]
        if len(shown) < len(digest.comments):
            lines.append(text(lang, "digest.comments.more", n=len(digest.comments) - len(shown)))
        for at, comment in shown:
            day = short_date(at, zone, lang)
            lines.append(text(lang, "digest.comment", date=day, comment=_shortened(comment)))
    if digest.openings:
        lines += ["", text(lang, "digest.openings")]
        lines.extend(f"– {opening}" for opening in digest.openings)
    return lines


def _headline_line(digest: Digest) -> str:
    return text(digest.lang, "digest.title", alias=digest.alias, finding=digest.headline)


def _when(digest: Digest, zone: tzinfo) -> list[str]:
    lang = digest.lang
    if digest.session_at is not None:
        session = text(lang, "digest.session", when=date_time(digest.session_at, zone, lang))
    else:
        session = text(lang, "digest.no_session")
    if digest.sent:
        counts = text(lang, "digest.counts", answered=digest.answered, sent=digest.sent)
    else:
        counts = text(lang, "digest.counts.none")
    return [session, counts]


def _signal_line(signal: Signal, zone: tzinfo, lang: str) -> str:
    """'‼ ALERT, 12 Mar: …': one line per signal, dated unless its sentence has the date."""
    mark = _MARKS[signal.severity]
    label = text(lang, f"digest.{signal.severity}")
    day = short_date(signal.since, zone, lang)
    if day in signal.explanation:
        return f"{mark} {label}: {signal.explanation}"
    return f"{mark} {label}, {day}: {signal.explanation}"


def _answer_lines(digest: Digest, zone: tzinfo) -> list[str]:
    """The latest alliance answers with every item's value, and wellbeing, each dated."""
    lang = digest.lang
    lines = []
    if digest.latest_at is not None and digest.latest_scores:
        items = ", ".join(
            text(
                lang,
                "digest.item_value",
                item=text(lang, f"chart.item.{item}"),
                value="–" if value is None else value,
            )
            for item, value in digest.latest_scores
        )
        day = short_date(digest.latest_at, zone, lang)
        scores = [value for _, value in digest.latest_scores]
        total = None if None in scores else sum(v for v in scores if v is not None)
        if total is None:
            lines.append(text(lang, "digest.scores.partial", date=day, items=items))
        else:
            key = "digest.scores.low" if total < config.CUTOFF else "digest.scores"
            lines.append(
                text(
                    lang,
                    key,
                    date=day,
                    total=total,
                    max=config.TOTAL_MAX,
                    cutoff=config.CUTOFF,
                    items=items,
                )
            )
    lines.extend(_outcome_line(trend, zone, lang) for trend in digest.outcomes)
    latest = digest.wellbeing_latest
    if latest is not None:
        at, value = latest
        values = {"date": short_date(at, zone, lang), "value": value, "max": config.ITEM_MAX}
        if digest.wellbeing_usual is None:
            lines.append(text(lang, "digest.wellbeing", **values))
        else:
            usual = number(round(digest.wellbeing_usual, 1), lang)
            lines.append(text(lang, "digest.wellbeing.usual", usual=usual, **values))
    return lines


def _outcome_line(trend: OutcomeTrend, zone: tzinfo, lang: str) -> str:
    """'PHQ-9 (depression), 12 Jan: 14/27, moderate; 8 on 1 Dec: reliably worse (6+ points)'."""
    line = text(
        lang,
        "digest.outcome",
        title=trend.title,
        date=short_date(trend.latest_at, zone, lang),
        total=trend.latest_total,
        max=trend.total_max,
        band=trend.band,
    )
    if trend.count < 2:
        return line
    change = text(
        lang,
        f"digest.outcome.{trend.change}",
        first=trend.first_total,
        date=short_date(trend.first_at, zone, lang),
        points=trend.reliable_change,
    )
    return f"{line}; {change}"


def _shortened(comment: str) -> str:
    """One line; a very long comment up to a word boundary with "…" (whole in the export)."""
    flat = " ".join(comment.split())
    if len(flat) <= COMMENT_SHOWN:
        return flat
    cut = flat.rfind(" ", COMMENT_SHOWN // 2, COMMENT_SHOWN)
    return flat[: cut if cut > 0 else COMMENT_SHOWN].rstrip() + "…"


def _risk_line(item: RiskItem, zone: tzinfo, lang: str) -> str:
    """One risk item, marked as an alert, with its time in the reader's zone."""
    when = date_time(item.at, zone, lang)
    if item.kind == "blocked":
        return f"{_MARKS['alert']} {text(lang, 'digest.risk.blocked', when=when)}"
    if item.kind == "safety_item":
        line = text(lang, "digest.risk.safety_item", when=when)
    else:
        # the words of the urgent alert itself: one wording for a kind of language
        kind = i18n.t(lang, f"therapist.crisis_kind.{item.category or 'other'}")
        line = text(lang, "digest.risk.crisis", when=when, kind=kind)
    if item.alerted:
        line += " " + text(lang, f"digest.risk.alerted.{item.alerted}")
    if item.ack is not None and item.ack.by is not None and item.ack.at is not None:
        at = date_time(item.ack.at, zone, lang)
        line += " " + text(lang, "digest.risk.acknowledged", who=item.ack.by, when=at)
    elif item.ack is not None:
        line += " " + text(lang, "digest.risk.not_acknowledged")
    return f"{_MARKS['alert']} {line}"


def _flag_ack_line(ack: FlagAcknowledged, zone: tzinfo, lang: str) -> str:
    """ "✅ Flag acknowledged by X, Mon 12 Jan, 10:00: Not a concern" (the choice as its button
    said it)."""
    choice = i18n.t(lang, f"alert.button_{ack.choice}")
    when = date_time(ack.at, zone, lang)
    return text(lang, "digest.flag_acknowledged", who=ack.by, when=when, choice=choice)


def _headline(digest: Digest, zone: tzinfo) -> str:
    """The finding: risk and signals in the order shown, then outcome news (a reliably worse
    PHQ-9 or GAD-7, a low wellbeing), or that all is well."""
    lang = digest.lang
    outcome = [
        headline.outcome_phrase(trend.instrument, trend.first_total, trend.latest_total, lang)
        for trend in digest.outcomes
        if trend.change == "worse"
    ]
    news = [*outcome, _wellbeing_news(digest)]
    talk = text(lang, "headline.talk") if digest.talk_requests else ""
    if talk:
        news.insert(0, talk)
    if digest.too_little_data:
        return headline.join_phrases(
            [text(lang, "digest.too_little", answered=digest.answered_total), *news], lang
        )
    if digest.all_well:
        answered, sent = (
            (digest.answered, digest.sent)
            if digest.sent
            else (digest.answered_total, digest.answered_total)
        )
        if digest.latest_total is None:
            well = text(lang, "digest.all_well.no_total", answered=answered, sent=sent)
        else:
            well = text(
                lang,
                "digest.all_well",
                answered=answered,
                sent=sent,
                total=digest.latest_total,
                max=config.TOTAL_MAX,
            )
        return headline.join_phrases([talk, well, *news], lang)
    phrases = [headline.risk_phrase(item, zone, lang) for item in digest.risks]
    if talk:  # the client's own request comes right after risk
        news.remove(talk)
        phrases.append(talk)
    phrases += [
        headline.signal_phrase(signal, digest.now, zone, lang)
        for signal in digest.signals
        if signal.severity != "info"
    ]
    # outcome news keeps a place among the first three, after the two most serious findings
    for phrase in reversed(news):
        if phrase:
            phrases.insert(min(len(phrases), headline.MAX_PARTS - 1), phrase)
    return headline.join_phrases(phrases, lang)


def _wellbeing_news(digest: Digest) -> str:
    """'wellbeing 2/10' when the latest answer is low or well below the client's usual."""
    latest = digest.wellbeing_latest
    if latest is None:
        return ""
    _, value = latest
    usual = digest.wellbeing_usual
    if value <= WELLBEING_LOW or (usual is not None and usual - value >= WELLBEING_DROP):
        return headline.wellbeing_phrase(value, digest.lang)
    return ""


def render_text(digest: Digest, tz: tzinfo | str | None = None) -> list[str]:
    """The digest as one plain-text message of ≤ 4096 characters.

    Older comments give way first when it would not fit (they stay in the export), then older
    requests to talk (a client sending `/talk` again and again), then older risk items (both
    counted in a line; all in the JSON); only what still does not fit is split on line
    boundaries.
    """
    zone = _zone(tz, digest)
    for shown in range(len(digest.comments), -1, -1):
        chunks = split_message(_lines(digest, zone, shown), MESSAGE_LIMIT)
        if len(chunks) <= 1:
            return chunks
    talks = min(len(digest.talk_requests), 1) or None  # the latest request always stays
    for kept in range(len(digest.talk_requests) - 1, 0, -1):
        chunks = split_message(_lines(digest, zone, 0, None, kept), MESSAGE_LIMIT)
        if len(chunks) <= 1:
            return chunks
    # dozens of urgent alerts: the most recent stay, a line counts the rest (all in the JSON)
    for risks in range(len(digest.risks) - 1, 0, -1):
        chunks = split_message(_lines(digest, zone, 0, risks, talks), MESSAGE_LIMIT)
        if len(chunks) <= 1:
            return chunks
    return chunks


def caption(digest: Digest, tz: tzinfo | str | None = None) -> str:
    """The chart's caption: the headline and when the session is, whole lines only (≤ 1024)."""
    lines = [_headline_line(digest), _when(digest, _zone(tz, digest))[0]]
    kept = "\n".join(lines)
    if len(kept) <= CAPTION_LIMIT:
        return kept
    # an alias is at most 100 characters and a headline three phrases: never in practice
    head = lines[0]
    cut = head.rfind("; ", 0, CAPTION_LIMIT)
    return head[:cut] if cut > 0 else head[: CAPTION_LIMIT - 1] + "…"


def split_message(lines: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Pack lines into chunks of at most `limit` characters; only over-long lines are broken."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in _fit(lines, limit):
        extra = len(line) + (1 if current else 0)
        if current and size + extra > limit:
            chunks.append("\n".join(current).strip("\n"))
            current, size = [], 0
            extra = len(line)
            if not line:
                continue
        current.append(line)
        size += extra
    if current:
        chunks.append("\n".join(current).strip("\n"))
    return [chunk for chunk in chunks if chunk]


def _fit(lines: list[str], limit: int) -> list[str]:
    """Break any line longer than `limit` at spaces (or hard, for one enormous word)."""
    fitted: list[str] = []
    for line in lines:
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            if cut <= 0:
                cut = limit
            fitted.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        fitted.append(line)
    return fitted


def _zone(tz: tzinfo | str | None, digest: Digest) -> tzinfo:
    """The reader's zone: given as a zone or an IANA name, else the client's own."""
    if tz is None:
        return zone_or_utc(digest.timezone)
    if isinstance(tz, str):
        return zone_or_utc(tz)
    return tz


def to_json(digest: Digest) -> dict[str, Any]:
    """The digest as JSON-ready data (datetimes as ISO 8601)."""
    return {
        "client": digest.client,
        "alias": digest.alias,
        "timezone": digest.timezone,
        "now": digest.now.isoformat(),
        "session_at": digest.session_at.isoformat() if digest.session_at else None,
        "lang": digest.lang,
        "answered": digest.answered,
        "sent": digest.sent,
        "answered_total": digest.answered_total,
        "level": digest.level,
        "all_well": digest.all_well,
        "too_little_data": digest.too_little_data,
        "headline": digest.headline,
        "alliance_measure": config.measure_title(digest.lang),
        "latest_total": digest.latest_total,
        "latest_at": digest.latest_at.isoformat() if digest.latest_at else None,
        "latest_scores": dict(digest.latest_scores),
        "wellbeing": {
            "latest": digest.wellbeing[-1][1] if digest.wellbeing else None,
            "latest_at": digest.wellbeing[-1][0].isoformat() if digest.wellbeing else None,
            "usual": (None if digest.wellbeing_usual is None else round(digest.wellbeing_usual, 1)),
            "series": [{"at": at.isoformat(), "value": value} for at, value in digest.wellbeing],
        },
        "baseline_total": (
            None if digest.baseline_total is None else round(digest.baseline_total, 1)
        ),
        "flagged_items": list(digest.flagged_items),
        "risks_since": "last_session" if digest.since_session else "start",
        "risks": [item.to_dict() for item in digest.risks],
        "talk_requests": [talk.to_dict() for talk in digest.talk_requests],
        "signals": [signal.to_dict() for signal in digest.signals],
        "flag_acknowledged": None if digest.flag_ack is None else digest.flag_ack.to_dict(),
        "outcomes": [trend.to_dict() for trend in digest.outcomes],
        "comments": [{"at": at.isoformat(), "text": comment} for at, comment in digest.comments],
        "openings": list(digest.openings),
    }
