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
from insights.cusum import WindowCusum
from insights.history import CheckinRecord, ClientHistory, posix
from insights.lexicon import is_confrontational

SENT: Final = 0
ANSWER: Final = 1
MISSED: Final = 2
LIFE: Final = 3
SESSION: Final = 4
"""A session on the practice's calendar (not cancelled) took place: the subject is "session"."""

QUIET_KINDS: Final = frozenset((SENT, SESSION))
"""Observations after which nothing is evaluated: no rule reads them until the next check-in is
answered or missed (the backtest's moments are answers, misses and life events)."""

SKIPPED_GAP: Final = 1.5
"""A gap between sessions this many times the client's usual gap means a session was skipped."""


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
            posix(record.sent_at),
            record.scores,
            record.comment,
            record.status == "partial",
            record.tension,
            record.talked_through,
        )


Observation = tuple[float, int, "Reply | str"]
"""(time, kind, the check-in or the life-event kind)."""


def observations(history: ClientHistory) -> list[Observation]:
    """The history as a stream in time order (ties: sent, answered, missed, life event, session:
    a check-in that expires at a session is missed before the session is held)."""
    stream: list[Observation] = []
    append = stream.append
    for record in history.checkins:
        reply = Reply.from_record(record)
        append((reply.sent, SENT, reply))
        if record.answered_at is not None:
            append((posix(record.answered_at), ANSWER, reply))
        elif record.status == "missed":
            expired = record.expired_at
            append((posix(expired) if expired else reply.sent, MISSED, reply))
    for event in history.events:
        append((posix(event.at), LIFE, event.kind))
    for session in history.sessions:
        append((posix(session), SESSION, "session"))
    stream.sort(key=itemgetter(0, 1))
    return stream


_ITEMS: Final = config.ALLIANCE_ITEMS
_ITEM_VALUES: Final = itemgetter(*_ITEMS)
"""The alliance items' values of a scores mapping, as a tuple (there are several items)."""
assert len(_ITEMS) > 1


class Answer:
    """One answered (or partly answered) check-in, reduced to what the rules use."""

    __slots__ = (
        "at",
        "comment_len",
        "commented",
        "confrontational",
        "delay_hours",
        "log_delay",
        "partial",
        "scores",
        "talked_through",
        "tension",
        "total",
    )

    def __init__(self, reply: Reply, at: float) -> None:
        self.at = at
        self.delay_hours = max(0.0, (at - reply.sent) / 3600.0)
        self.log_delay = math.log(max(self.delay_hours, 1 / 60))
        """The reply delay in log hours (a minute at least): delays are log-normal."""
        scores = reply.scores
        self.scores = scores
        self.total: float | None = None
        """The alliance total; None unless every item has a number."""
        try:
            values = _ITEM_VALUES(scores)
        except KeyError:
            pass
        else:
            if None not in values:
                self.total = float(sum(values))
        comment = reply.comment
        if comment:
            self.commented = True
            self.comment_len = len(comment.strip())
            self.confrontational = is_confrontational(comment)
        else:
            self.commented = self.confrontational = False
            self.comment_len = 0
        self.partial = reply.partial
        self.tension = reply.tension
        self.talked_through = reply.talked_through


class ItemTrack:
    """One alliance item's answers: values and when they came."""

    __slots__ = ("item", "times", "values")

    def __init__(self, item: str) -> None:
        self.item = item
        self.values: list[int] = []
        self.times: list[float] = []


class ClientState:
    """A client's history folded up to the last observation; the rules read it, never write it.

    Besides the answers themselves it keeps parallel lists of plain numbers, so that a window or
    a baseline is a slice, and running counts of the first i outcomes answered and unfinished,
    so that a rate over any span is a subtraction.
    """

    __slots__ = (
        "answered_upto",
        "answers",
        "blocked_at",
        "cadence_seconds",
        "delays",
        "engage_cusum",
        "falling_cusum",
        "first_sent",
        "items",
        "last_reply",
        "last_session",
        "log_delays",
        "memo",
        "missed_in_row",
        "missed_run_start",
        "outcomes",
        "partial_upto",
        "paused_at",
        "session_gaps",
        "silent_after",
        "silent_before",
        "silent_session",
        "silent_sessions",
        "silent_skipped",
        "stopped_at",
        "total_diffs",
        "total_times",
        "totals",
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
        self.answered_upto: list[int] = [0]
        self.partial_upto: list[int] = [0]
        """How many of the first i outcomes were answered (fully or not) / left unfinished."""
        self.answers: list[Answer] = []
        self.delays: list[float] = []
        """Each answer's reply delay in hours, in order."""
        self.log_delays: list[float] = []
        """Each answer's `Answer.log_delay`, in order."""
        self.totals: list[float] = []
        self.total_times: list[float] = []
        """The alliance totals of the answers that have one, and when they came."""
        self.total_diffs: list[float] = []
        """Sizes of the changes between successive totals, sorted: the client's own noise."""
        self.items: tuple[ItemTrack, ...] = tuple(ItemTrack(item) for item in _ITEMS)
        self.memo: dict[object, object] = {}
        """Values the rules derive from baselines, kept while their inputs stay the same."""
        self.engage_cusum = WindowCusum()
        self.falling_cusum = WindowCusum()
        """The rules' running sums, carried from one check-in to the next."""
        self.paused_at: float | None = None
        self.stopped_at: float | None = None
        self.blocked_at: float | None = None
        self.last_session: float | None = None
        self.session_gaps: list[float] = []
        """Gaps between successive sessions, sorted: the client's usual rhythm is their median."""
        self.silent_session: float | None = None
        """The first session held while a check-in sent since the last reply was unanswered."""
        self.silent_sessions = 0
        """Sessions held since `silent_session` (itself included)."""
        self.silent_before = 0
        self.silent_after = 0
        """Check-ins missed in that silent spell, sent before / after `silent_session`."""
        self.silent_skipped = False
        """Whether a session was skipped during the silent spell (a holiday, not a withdrawal)."""

    def observe(self, t: float, kind: int, subject: Reply | str) -> None:
        """Fold in one observation; they must arrive in time order."""
        if kind == ANSWER:
            assert isinstance(subject, Reply)
            self._answer(subject, t)
        elif kind == SENT:
            if self.first_sent is None:
                self.first_sent = t
            if self.unanswered_since is None:
                self.unanswered_since = t
        elif kind == MISSED:
            assert isinstance(subject, Reply)
            sent = subject.sent
            self.outcomes.append((sent, "M", 0.0))
            self.answered_upto.append(self.answered_upto[-1])
            self.partial_upto.append(self.partial_upto[-1])
            if self.missed_in_row == 0:
                self.missed_run_start = sent
            self.missed_in_row += 1
            if self.silent_session is not None and sent > self.silent_session:
                self.silent_after += 1
            else:
                self.silent_before += 1
        elif kind == SESSION:
            self._session(t)
        else:
            self._life(str(subject), t)

    def _session(self, t: float) -> None:
        """A session held: note whether the client has been silent through it, or skipped one."""
        gaps = self.session_gaps
        skipped = False
        if self.last_session is not None:
            gap = t - self.last_session
            if gaps and gap > SKIPPED_GAP * gaps[len(gaps) // 2]:
                skipped = True
            insort(gaps, gap)
        self.last_session = t
        if self.unanswered_since is None or self.paused_at is not None:
            return
        if skipped:
            self.silent_skipped = True
        if self.silent_session is None:
            self.silent_session = t
        self.silent_sessions += 1

    def away(self, now: float) -> bool:
        """Silent, and a session skipped since the silence began or due and not held by `now`."""
        if not self.missed_in_row:
            return False
        if self.silent_skipped:
            return True
        gaps = self.session_gaps
        last = self.last_session
        return bool(gaps) and last is not None and now - last > SKIPPED_GAP * gaps[len(gaps) // 2]

    def _reset_silent_spell(self) -> None:
        self.silent_session = None
        self.silent_sessions = self.silent_before = self.silent_after = 0
        self.silent_skipped = False

    def _answer(self, reply: Reply, t: float) -> None:
        answer = Answer(reply, t)
        self.answers.append(answer)
        self.delays.append(answer.delay_hours)
        log_delay = answer.log_delay
        self.log_delays.append(log_delay)
        partly = answer.partial
        self.outcomes.append((reply.sent, "P" if partly else "A", log_delay))
        upto = self.answered_upto
        upto.append(upto[-1] + 1)
        upto = self.partial_upto
        upto.append(upto[-1] + partly)
        self.last_reply = t
        self.unanswered_since = None
        self.missed_in_row = 0
        self.missed_run_start = None
        self._reset_silent_spell()
        total = answer.total
        if total is not None:
            totals = self.totals
            if totals:
                insort(self.total_diffs, abs(total - totals[-1]))
            totals.append(total)
            self.total_times.append(t)
        scores = answer.scores
        for track in self.items:
            value = scores.get(track.item)
            if value is not None:
                track.values.append(value)
                track.times.append(t)

    def _life(self, kind: str, t: float) -> None:
        if kind == "paused":
            self.paused_at = t
        elif kind == "resumed":
            self.paused_at = None
            self.stopped_at = None
            self.unanswered_since = None
            self.missed_in_row = 0
            self.missed_run_start = None
            self._reset_silent_spell()
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
