"""What the signals look at, kept up to date one observation at a time.

A history is replayed as a time-ordered stream of observations (a check-in sent, answered,
missed; paused, stopped, blocked...). `ClientState` folds them in with constant work each, so
the backtest can ask "what would Rapport have said at this moment?" after every event without
re-reading the past, and `detect` gets the same answer by replaying up to `now`. Times are POSIX
seconds here; the public API speaks datetimes.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Iterable, Iterator, Mapping
from operator import itemgetter
from typing import Final

from insights import config
from insights.history import CheckinRecord, ClientHistory
from insights.lexicon import is_confrontational

SENT: Final = 0
ANSWER: Final = 1
MISSED: Final = 2
LIFE: Final = 3


class Reply:
    """A check-in as the stream carries it: POSIX times and the answer, if any.

    Built from a `CheckinRecord` (`from_record`) or straight from a backtest line, so that the
    backtest need not build datetimes it never shows.
    """

    __slots__ = ("comment", "partial", "scores", "sent", "talked_through", "tension")

    def __init__(
        self,
        sent: float,
        scores: Mapping[str, int | None],
        comment: str | None = None,
        partial: bool = False,
        tension: bool | None = None,
        talked_through: bool | None = None,
    ) -> None:
        self.sent = sent
        self.scores = scores
        self.comment = comment
        self.partial = partial
        self.tension = tension
        self.talked_through = talked_through

    @classmethod
    def from_record(cls, record: CheckinRecord) -> Reply:
        return cls(
            record.sent_at.timestamp(),
            record.scores,
            record.comment,
            record.status == "partial",
            record.tension,
            record.talked_through,
        )


Observation = tuple[float, int, "Reply | str"]
"""(time, kind, the check-in or the life-event kind)."""


def observations(history: ClientHistory) -> list[Observation]:
    """The history as a stream in time order (ties: sent, answered, missed, life event)."""
    stream: list[Observation] = []
    append = stream.append
    for record in history.checkins:
        reply = Reply.from_record(record)
        append((reply.sent, SENT, reply))
        if record.answered_at is not None:
            append((record.answered_at.timestamp(), ANSWER, reply))
        elif record.status == "missed":
            expired = record.expired_at
            append((expired.timestamp() if expired else reply.sent, MISSED, reply))
    for event in history.events:
        append((event.at.timestamp(), LIFE, event.kind))
    stream.sort(key=itemgetter(0, 1))
    return stream


class Answer:
    """One answered (or partly answered) check-in, reduced to what the rules use."""

    __slots__ = (
        "at",
        "comment_len",
        "commented",
        "confrontational",
        "delay_hours",
        "partial",
        "scores",
        "talked_through",
        "tension",
        "total",
    )

    def __init__(self, reply: Reply, at: float) -> None:
        self.at = at
        self.delay_hours = max(0.0, (at - reply.sent) / 3600.0)
        scores = reply.scores
        self.scores = scores
        total = 0
        for item in config.ALLIANCE_ITEMS:
            value = scores.get(item)
            if value is None:
                total = -1
                break
            total += value
        self.total: float | None = None if total < 0 else float(total)
        comment = reply.comment
        self.commented = bool(comment)
        self.comment_len = len(comment.strip()) if comment else 0
        self.confrontational = is_confrontational(comment) if comment else False
        self.partial = reply.partial
        self.tension = reply.tension
        self.talked_through = reply.talked_through


class ClientState:
    """A client's history folded up to the last observation; the rules read it, never write it."""

    __slots__ = (
        "answers",
        "blocked_at",
        "cadence_seconds",
        "first_sent",
        "item_series",
        "last_reply",
        "memo",
        "missed_in_row",
        "missed_run_start",
        "outcomes",
        "paused_at",
        "stopped_at",
        "total_diffs",
        "total_series",
        "unanswered_since",
    )

    def __init__(self, cadence_days: float) -> None:
        self.cadence_seconds = max(cadence_days, 0.01) * 86400.0
        self.first_sent: float | None = None
        self.last_reply: float | None = None
        self.unanswered_since: float | None = None
        """When the oldest check-in sent after the last reply went out (None: nothing waiting)."""
        self.missed_in_row = 0
        self.missed_run_start: float | None = None
        self.outcomes: list[tuple[float, str, float]] = []
        """Resolved check-ins in order: (sent time, "A"nswered / "P"artial / "M"issed, log of
        the reply delay in hours, 0 for a miss)."""
        self.answers: list[Answer] = []
        self.total_series: list[tuple[float, float]] = []
        self.total_diffs: list[float] = []
        """Sizes of the changes between successive totals, sorted: the client's own noise."""
        self.item_series: dict[str, list[tuple[float, int]]] = {
            item: [] for item in config.ALLIANCE_ITEMS
        }
        self.memo: dict[object, object] = {}
        """Results the rules may reuse until the next answer or miss (keyed by their inputs)."""
        self.paused_at: float | None = None
        self.stopped_at: float | None = None
        self.blocked_at: float | None = None

    def observe(self, t: float, kind: int, subject: Reply | str) -> None:
        """Fold in one observation; they must arrive in time order."""
        if kind == SENT:
            if self.first_sent is None:
                self.first_sent = t
            if self.unanswered_since is None:
                self.unanswered_since = t
        elif kind == ANSWER:
            assert isinstance(subject, Reply)
            self._answer(subject, t)
        elif kind == MISSED:
            assert isinstance(subject, Reply)
            sent = subject.sent
            self.outcomes.append((sent, "M", 0.0))
            if self.missed_in_row == 0:
                self.missed_run_start = sent
            self.missed_in_row += 1
        else:
            self._life(str(subject), t)

    def _answer(self, reply: Reply, t: float) -> None:
        answer = Answer(reply, t)
        self.answers.append(answer)
        self.outcomes.append(
            (
                reply.sent,
                "P" if answer.partial else "A",
                math.log(max(answer.delay_hours, 1 / 60)),
            )
        )
        self.last_reply = t
        self.unanswered_since = None
        self.missed_in_row = 0
        self.missed_run_start = None
        if answer.total is not None:
            if self.total_series:
                insort(self.total_diffs, abs(answer.total - self.total_series[-1][1]))
            self.total_series.append((t, answer.total))
        scores = answer.scores
        for item, series in self.item_series.items():
            value = scores.get(item)
            if value is not None:
                series.append((t, value))

    def _life(self, kind: str, t: float) -> None:
        if kind == "paused":
            self.paused_at = t
        elif kind == "resumed":
            self.paused_at = None
            self.stopped_at = None
            self.unanswered_since = None
            self.missed_in_row = 0
            self.missed_run_start = None
        elif kind == "stopped":
            self.stopped_at = t
        elif kind == "blocked":
            self.blocked_at = t
        elif kind == "unblocked":
            self.blocked_at = None


    def total_noise(self, minimum: int = 4) -> float | None:
        """The client's typical check-in-to-check-in wobble in the total, as a standard deviation.

        Estimated from the median size of successive changes (for normal noise that median is
        0.954 sigma), which a steady trend or a single dip hardly moves. None until `minimum`
        changes have been seen.
        """
        diffs = self.total_diffs
        if len(diffs) < minimum:
            return None
        return diffs[len(diffs) // 2] / 0.954


def replay(history: ClientHistory, until: float) -> ClientState:
    """The state as it stood at `until` (inclusive): nothing later is looked at."""
    state = ClientState(history.cadence_days)
    for t, kind, subject in observations(history):
        if t > until:
            break
        state.observe(t, kind, subject)
    return state


def stream_until(stream: Iterable[Observation], until: float) -> Iterator[Observation]:
    """The observations at or before `until`."""
    for observation in stream:
        if observation[0] > until:
            return
        yield observation
