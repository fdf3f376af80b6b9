"""The digest chart: the alliance total, wellbeing and the four items over time, for a phone.

A 900×1200 PNG in three panels sharing one time axis: the total against the cut-off line (missed
check-ins marked along the bottom, unfinished ones hollow, reported tension and urgent alerts
marked, sessions as numbered verticals), the client's wellbeing (the outcome beside the alliance)
with any PHQ-9 or GAD-7 the client answered (on a scale of their own, unticked: each total is
written at its point, the latest with its band in the margin), and the four items against the flag
line, drawn side by side with a shape each so equal scores never hide one another. Labels sit in
the right margin, where data cannot run through them; the title is the digest's finding; every
label is in the reader's language. Drawn with matplotlib's Agg canvas directly (no pyplot). Speed
matters (a practice's digests go out in a batch), so: each thread keeps one figure and only swaps
the data between charts (and the labels, when the language changes); nothing is laid out
automatically (fixed margins and axis-label positions, no legend box, no tight bounding box); the
date ticks are chosen here rather than by matplotlib's date locator; glyphs are not hinted; and the
PNG is written here, unfiltered, compressed lightly and without alpha.
"""

from __future__ import annotations

import struct
import textwrap
import threading
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from itertools import pairwise
from pathlib import Path
from typing import IO, Final

import matplotlib
import numpy as np

matplotlib.use("Agg")

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator

from flows.i18n import decimal
from flows.visible import visible_text
from insights import config
from insights.history import CheckinRecord, ClientHistory, posix
from insights.outcomes import OutcomeTrend
from insights.texts import text

# Unhinted glyphs: a fifth less drawing time, and at these sizes they read just as well. This
# module is the only one in the project that draws, so the setting is made here, once.
matplotlib.rcParams["text.hinting"] = "no_hinting"

WIDTH_PX: Final = 900
HEIGHT_PX: Final = 1200
DPI: Final = 100
"""Only sets the scale of fonts and lines: the image is WIDTH_PX × HEIGHT_PX whatever it is.

Portrait and large type: Telegram shows a photo at the phone's width (about 360–430 points), so
a 900-pixel-wide chart is drawn at 0.4–0.5 of its size, and 24-pixel text reads as 10–12 points."""
_FONT: Final = 24
_TITLE_CHARS: Final = 40
"""A title line wraps at about this many characters (the title font at this width); the
legend line at about a third more."""
_PNG_LEVEL: Final = 3
"""zlib level: about as fast as 1 on these mostly flat charts (60 synthetic clients: 52 ms a
chart either way) and 5–10% smaller; the default (6) costs a fifth more time for 10% less."""
_RED: Final = "#c0392b"
_BLUE: Final = "#1f4e79"
_CRISIS: Final = "#7b0000"
_TENSION: Final = "#e67e22"
_WELLBEING: Final = "#8e44ad"
_ITEM_COLOURS: Final[dict[str, str]] = dict(
    zip(config.ALLIANCE_ITEMS, ("#1b9e77", "#d95f02", "#7570b3", "#444444"), strict=True)
)
"""One colour per alliance item, in the instrument's order."""
_ITEM_MARKERS: Final[dict[str, str]] = dict(
    zip(config.ALLIANCE_ITEMS, ("o", "s", "D", "v"), strict=True)
)
"""...and one marker shape, so items can be told apart without colour."""
_MEASURES: Final = (("#a6761d", "*", "★"), ("#e7298a", "P", "✚"))
"""Colour, marker and its glyph of the outcome measures drawn beside wellbeing (at most two)."""
_MARGIN_CHARS: Final = 14
"""A measure's label and band wrap at about this many characters to stay in the right margin."""
_OFFSET: Final = 0.024
"""Items are drawn side by side, this share of the time axis apart (about 15 pixels), so equal
scores all show; closer when check-ins are close, so one check-in's four never reach the next."""


class _Template:
    """One figure with every artist in place; `draw` swaps in a client's data."""

    def __init__(self) -> None:
        figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        self.canvas = FigureCanvasAgg(figure)
        grid = figure.add_gridspec(3, 1, height_ratios=(4, 2, 3), hspace=0.14)
        top = figure.add_subplot(grid[0])
        middle = figure.add_subplot(grid[1], sharex=top)
        bottom = figure.add_subplot(grid[2], sharex=top)
        figure.subplots_adjust(left=0.1, right=0.8, top=0.82, bottom=0.065)
        self.figure = figure
        self.top = top
        self.middle = middle
        self.bottom = bottom
        # the title carries the alias: a "$" in it must print, not start matplotlib's math mode
        self.title = figure.text(
            0.02, 0.99, "", fontsize=_FONT + 2, ha="left", va="top", weight="bold", parse_math=False
        )
        self.legend = figure.text(0.02, 0.905, "", fontsize=_FONT - 4, ha="left", va="top")
        self.measure = figure.text(
            0.99, 0.004, "", fontsize=_FONT - 8, ha="right", va="bottom", color="#777777"
        )
        self.total = _line(top, color=_BLUE, linewidth=3.5, marker="o", markersize=10)
        self.unfinished = _line(
            top,
            linestyle="none",
            marker="o",
            markersize=13,
            markerfacecolor="none",
            markeredgecolor=_BLUE,
            markeredgewidth=2.5,
        )
        self.missed = _line(
            top, linestyle="none", marker="x", markersize=15, color=_RED, markeredgewidth=3.5
        )
        self.tension = _line(
            top, linestyle="none", marker="D", markersize=13, color=_TENSION, zorder=5
        )
        # urgent alerts: a distinct mark along the top of the panel
        self.crises = _line(
            top, linestyle="none", marker="^", markersize=18, color=_CRISIS, zorder=6
        )
        self.cutoff = top.axhline(config.CUTOFF, color=_RED, linestyle="--", linewidth=2)
        # in the margin beside its line: the data can never run through it
        self.cutoff_label = top.text(
            1.015,
            config.CUTOFF,
            "",
            transform=top.get_yaxis_transform(),
            va="center",
            fontsize=_FONT - 4,
            color=_RED,
        )
        self.empty = top.text(
            0.5,
            0.5,
            "",
            transform=top.transAxes,
            ha="center",
            va="center",
            fontsize=_FONT + 2,
            color="#666666",
        )
        self.wellbeing = _line(
            middle, color=_WELLBEING, linewidth=3, marker="o", markersize=9, zorder=3
        )
        # Outcome measures on their own scale (0 to the largest total), ticks left off: each
        # point carries its total, and the margin the latest with its band.
        self.outcome_axis = middle.twinx()
        self.outcome_axis.set_yticks([])
        for side in ("top", "right", "left", "bottom"):
            self.outcome_axis.spines[side].set_visible(False)
        self.outcomes = [
            _line(
                self.outcome_axis,
                color=colour,
                linewidth=2,
                linestyle="--",
                marker=marker,
                markersize=14,
                zorder=4,
            )
            for colour, marker, _ in _MEASURES
        ]
        self.outcome_names = [
            middle.text(
                1.015,
                0.98,
                "",
                transform=middle.transAxes,
                va="top",
                fontsize=_FONT - 8,
                color=colour,
            )
            for row, (colour, _, _) in enumerate(_MEASURES)
        ]
        self.outcome_values: list[Text] = []
        self.items = {
            item: _line(
                bottom,
                color=colour,
                linewidth=1.5,
                marker=_ITEM_MARKERS[item],
                markersize=9,
                alpha=0.9,
            )
            for item, colour in _ITEM_COLOURS.items()
        }
        self.item_names = {
            item: bottom.text(
                1.015,
                0.97 - 0.25 * row,
                "",
                transform=bottom.transAxes,
                va="top",
                fontsize=_FONT - 4,
                color=colour,
            )
            for row, (item, colour) in enumerate(_ITEM_COLOURS.items())
        }
        self.flag = bottom.axhline(config.ITEM_FLAG, color=_RED, linestyle=":", linewidth=1.5)
        self.sessions: list[LineCollection] = []
        for axis in (top, middle, bottom):
            collection = LineCollection(
                [], colors="#aaaaaa", linewidths=1.2, zorder=0, transform=axis.get_xaxis_transform()
            )
            axis.add_collection(collection)
            self.sessions.append(collection)
        self.session_labels: list[Text] = []
        self.total_label = top.set_ylabel("", fontsize=_FONT - 2)
        self.wellbeing_label = middle.set_ylabel("", fontsize=_FONT - 2)
        self.items_label = bottom.set_ylabel("", fontsize=_FONT - 2)
        self.lang = ""
        self.set_language("en")
        for axis in (middle, bottom):
            axis.set_ylim(-0.7, config.ITEM_MAX + 0.7)
            axis.set_yticks([0, 5, 10])
        for axis in (top, middle, bottom):
            # fixed label places: otherwise every draw measures every tick label to place them
            axis.yaxis.set_label_coords(-0.09, 0.5)
            axis.tick_params(labelsize=_FONT - 4, length=0)
            axis.grid(axis="y", color="#eeeeee", linewidth=0.8)
            for side in ("top", "right"):
                axis.spines[side].set_visible(False)
        for axis in (top, middle):
            axis.tick_params(labelbottom=False)
        top.xaxis.set_major_locator(FixedLocator([]))

    def set_language(self, lang: str) -> None:
        """The labels that stay from one chart to the next, in `lang` (only when it changes)."""
        if lang == self.lang:
            return
        self.lang = lang
        self.total_label.set_text(text(lang, "chart.total", max=config.TOTAL_MAX))
        self.wellbeing_label.set_text(text(lang, "chart.wellbeing", max=config.ITEM_MAX))
        self.items_label.set_text(text(lang, "chart.items", max=config.ITEM_MAX))
        self.measure.set_text(config.measure_title(lang))
        for item, label in self.item_names.items():
            shape = _SHAPES[_ITEM_MARKERS[item]]
            label.set_text(f"{shape} {text(lang, f'chart.item.{item}')}")

    def draw(
        self,
        history: ClientHistory,
        now: datetime,
        cutoff: float,
        item_flag: int,
        lang: str = "en",
        finding: str = "",
        outcomes: Sequence[OutcomeTrend] = (),
    ) -> bytes:
        self.set_language(lang)
        zone = history.zone()
        shown = [c for c in history.checkins if c.sent_at <= now]
        answered = [c for c in shown if c.answered_at is not None and c.answered_at <= now]
        missed = [c for c in shown if _missed_by(c, now)]
        alias = visible_text(history.alias)
        title = f"{alias}: {finding}" if finding else text(lang, "chart.title", alias=alias)
        lines = textwrap.wrap(title, _TITLE_CHARS)
        if len(lines) > 2:
            lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), _TITLE_CHARS, placeholder="…")]
        self.title.set_text("\n".join(lines))

        points = [
            (_num(c.answered_at), t)
            for c in answered
            if c.answered_at is not None and (t := _total(c)) is not None
        ]
        lowest = min((t for _, t in points), default=config.TOTAL_MAX)
        floor = max(0, min(20, int(lowest) - 4))
        self.total.set_data([p[0] for p in points], [p[1] for p in points])
        unfinished = [
            _num(c.answered_at)
            for c in answered
            if c.status == "partial" and c.answered_at is not None
        ]
        self.unfinished.set_data(unfinished, [floor + 1.5] * len(unfinished))
        self.missed.set_data([_num(c.sent_at) for c in missed], [floor + 1.5] * len(missed))
        tension = [
            (_num(c.answered_at), t if (t := _total(c)) is not None else floor + 1.5)
            for c in answered
            if c.tension and c.answered_at is not None
        ]
        self.tension.set_data([p[0] for p in tension], [p[1] for p in tension])
        self.cutoff.set_ydata([cutoff, cutoff])
        self.cutoff_label.set_text(text(lang, "chart.cutoff", cutoff=decimal(f"{cutoff:g}", lang)))
        self.cutoff_label.set_y(cutoff)
        self.flag.set_ydata([item_flag, item_flag])
        crises = [_num(c.at) for c in history.crises if c.at <= now]
        self.crises.set_data(crises, [config.TOTAL_MAX + 0.5] * len(crises))
        notes = [
            text(lang, key).replace(" ", "\u00a0")  # one note never breaks across lines
            for key, present in (
                ("chart.crisis", crises),
                ("chart.tension", tension),
                ("chart.missed", missed),
                ("chart.unfinished", unfinished),
                ("chart.session", [s for s in history.sessions if s <= now]),
            )
            if present
        ]
        self.legend.set_text("\n".join(textwrap.wrap("   ".join(notes), _TITLE_CHARS * 4 // 3)))
        self.empty.set_text("" if shown else text(lang, "chart.empty"))
        self.top.set_ylim(floor, config.TOTAL_MAX + 1.5)
        self.top.set_yticks(range(floor + (-floor % 10), config.TOTAL_MAX + 1, 10))

        start = shown[0].sent_at if shown else now - timedelta(days=14)
        end = max(now, start + timedelta(days=7))
        left, right = _num(start - timedelta(days=1)), _num(end + timedelta(days=1))
        wellbeing = [
            (_num(c.answered_at), v)
            for c in answered
            if c.answered_at is not None and (v := c.scores.get(config.WELLBEING_ITEM)) is not None
        ]
        self.wellbeing.set_data([p[0] for p in wellbeing], [p[1] for p in wellbeing])
        self._draw_outcomes(outcomes, now, lang)
        times = sorted(_num(c.answered_at) for c in answered if c.answered_at is not None)
        gaps = sorted(b - a for a, b in pairwise(times) if b > a)
        step = (right - left) * _OFFSET
        if gaps:
            step = min(step, gaps[len(gaps) // 2] / 5)  # four side by side use 60% of a gap
        middle = (len(self.items) - 1) / 2
        for row, (item, line) in enumerate(self.items.items()):
            values = [
                (_num(c.answered_at) + (row - middle) * step, v)
                for c in answered
                if c.answered_at is not None and (v := c.scores.get(item)) is not None
            ]
            line.set_data([p[0] for p in values], [p[1] for p in values])
        sessions = [_num(s) for s in history.sessions if s <= now]
        for collection in self.sessions:
            collection.set_segments([[(x, 0.0), (x, 1.0)] for x in sessions])
        for label in self.session_labels:
            label.remove()
        self.session_labels = [
            self.top.text(
                x,
                1.0,
                text(lang, "chart.session.n", n=number),
                transform=self.top.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=_FONT - 8,
                color="#777777",
            )
            for number, x in enumerate(sessions, start=1)
            if left <= x <= right
        ]

        self.top.set_xlim(left, right)
        ticks, labels = _date_ticks(start, end, zone, lang)
        self.bottom.set_xticks(ticks, labels)

        self.canvas.draw()
        return _png(np.asarray(self.canvas.buffer_rgba()))

    def _draw_outcomes(self, outcomes: Sequence[OutcomeTrend], now: datetime, lang: str) -> None:
        """Each measure's totals up to `now`, its latest total and band in the margin."""
        for label in self.outcome_values:
            label.remove()
        self.outcome_values = []
        shown = list(outcomes[: len(_MEASURES)])
        top = max((trend.total_max for trend in shown), default=1)
        self.outcome_axis.set_ylim(-0.07 * top, top * 1.07)
        times = sorted({_num(at) for trend in shown for at, _ in trend.series if at <= now})
        gaps = [b - a for a, b in pairwise(times)]
        step = min([0.6, *(gap / 5 for gap in gaps)])  # beside wellbeing, never at the next
        panel_px = self.middle.get_position().height * HEIGHT_PX
        y = 0.98
        for row, line in enumerate(self.outcomes):
            name = self.outcome_names[row]
            trend = shown[row] if row < len(shown) else None
            shift = (row - (len(shown) - 1) / 2 + 0.5 * (len(shown) == 1)) * step
            points = [(_num(at) + shift, v) for at, v in trend.series if at <= now] if trend else []
            line.set_data([p[0] for p in points], [p[1] for p in points])
            if trend is None or not points:
                name.set_text("")
                continue
            caption = text(
                lang,
                "chart.outcome",
                shape=_MEASURES[row][2],
                title=trend.title.split(" (", 1)[0],
                total=points[-1][1],
                max=trend.total_max,
            )
            lines = textwrap.wrap(caption, _MARGIN_CHARS) + textwrap.wrap(trend.band, _MARGIN_CHARS)
            name.set_text("\n".join(lines))
            name.set_y(y)
            # the next one starts below this one as drawn (measured: fonts differ by language)
            y -= name.get_window_extent(self.canvas.get_renderer()).height / panel_px + 0.05
            self.outcome_values += [
                self.outcome_axis.text(
                    x + step * 0.4,
                    value,
                    str(value),
                    ha="left",
                    va="center",
                    fontsize=_FONT - 8,
                    color=_MEASURES[row][0],
                )
                for x, value in points
            ]


_SHAPES: Final[dict[str, str]] = {"o": "●", "s": "■", "D": "◆", "v": "▼"}


def _line(axis: Axes, **style: object) -> Line2D:
    (line,) = axis.plot([], [], **style)  # type: ignore[arg-type]
    return line


def _date_ticks(
    start: datetime, end: datetime, zone: tzinfo, lang: str = "en"
) -> tuple[list[float], list[str]]:
    """Mondays, every one or every few weeks so that there are at most four, as '12 Jan'."""
    first = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    monday = first + timedelta(days=-first.weekday() % 7)
    weeks = (last - monday).days // 7 + 1
    step = max(1, -(-weeks // 4))
    ticks: list[float] = []
    labels: list[str] = []
    day = monday
    while day <= last:
        ticks.append(_num(datetime.combine(day, time(12), zone)))
        labels.append(text(lang, "chart.tick", date=day))
        day += timedelta(weeks=step)
    return ticks, labels


_local = threading.local()


def render_chart(
    history: ClientHistory,
    now: datetime,
    path_or_buffer: str | Path | IO[bytes] | None = None,
    *,
    cutoff: float = config.CUTOFF,
    item_flag: int = config.ITEM_FLAG,
    lang: str = "en",
    finding: str = "",
    outcomes: Sequence[OutcomeTrend] = (),
) -> bytes:
    """Draw the chart of everything known at `now`, labelled in `lang`, titled with the digest's
    `finding` when given, with the outcome measures of the digest (`Digest.outcomes`); write it
    to `path_or_buffer` if given.

    Returns the PNG bytes either way.
    """
    template: _Template | None = getattr(_local, "template", None)
    if template is None:
        template = _local.template = _Template()
    data = template.draw(history, now, cutoff, item_flag, lang, finding, outcomes)
    if isinstance(path_or_buffer, str | Path):
        Path(path_or_buffer).write_bytes(data)
    elif path_or_buffer is not None:
        path_or_buffer.write(data)
    return data


def _num(moment: datetime) -> float:
    """Matplotlib's day number for an instant: `mdates.date2num`, without its array round trip."""
    return _EPOCH_DAY + posix(moment) / 86400.0


_EPOCH_DAY: Final = float(mdates.date2num(datetime(1970, 1, 1, tzinfo=UTC)))


def _png(rgba: np.ndarray) -> bytes:
    """An RGB PNG of an RGBA pixel array: every row unfiltered, zlib at a fast level.

    PIL tries a filter per row and compresses harder, which takes twice as long for a file of
    about the same size on charts like these (mostly flat colour).
    """
    height, width = rgba.shape[:2]
    rows = np.zeros((height, 1 + width * 3), dtype=np.uint8)  # leading 0: filter "none"
    rows[:, 1:] = rgba[:, :, :3].reshape(height, width * 3)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), _PNG_LEVEL)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _missed_by(record: CheckinRecord, now: datetime) -> bool:
    if record.answered_at is not None and record.answered_at <= now:
        return False
    if record.status == "missed":
        return (record.expired_at or record.sent_at) <= now
    return record.expired_at is not None and record.expired_at <= now


def _total(record: CheckinRecord) -> int | None:
    values: Sequence[int | None] = [record.scores.get(item) for item in config.ALLIANCE_ITEMS]
    if any(value is None for value in values):
        return None
    return sum(v for v in values if v is not None)
