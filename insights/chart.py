"""The digest chart: the alliance total and its four items over time, readable on a phone.

A 1000×600 PNG in two panels: the total against the cut-off line (missed check-ins marked along
the bottom, unfinished ones hollow, sessions as faint verticals), and the four items against the
flag line, each named in its colour at the right; every label is in the reader's language. Drawn
with matplotlib's Agg canvas directly (no pyplot). Speed matters (a practice's digests go out in a
batch), so: each thread keeps one figure and only swaps the data between charts (and the labels,
when the language changes); nothing is laid out automatically (fixed margins and axis-label
positions, no legend box, no tight bounding box); the date ticks are chosen here rather than by
matplotlib's date locator; glyphs are not hinted; and the PNG is written here, unfiltered,
compressed lightly and without alpha.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
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
from matplotlib.ticker import FixedLocator

from flows.i18n import decimal
from insights import config
from insights.history import CheckinRecord, ClientHistory, posix
from insights.texts import text

# Unhinted glyphs: a fifth less drawing time, and at these sizes they read just as well. This
# module is the only one in the project that draws, so the setting is made here, once.
matplotlib.rcParams["text.hinting"] = "no_hinting"

WIDTH_PX: Final = 1000
HEIGHT_PX: Final = 600
DPI: Final = 100
"""Only sets the scale of fonts and lines: the image is WIDTH_PX × HEIGHT_PX whatever it is."""
_FONT: Final = 15
_PNG_LEVEL: Final = 1
"""zlib level: 1 is several times faster than the default and the file stays well under 200 KB."""
_RED: Final = "#c0392b"
_BLUE: Final = "#1f4e79"
_CRISIS: Final = "#7b0000"
_ITEM_COLOURS: Final[dict[str, str]] = dict(
    zip(config.ALLIANCE_ITEMS, ("#1b9e77", "#d95f02", "#7570b3", "#666666"), strict=True)
)
"""One colour per alliance item, in the instrument's order."""


class _Template:
    """One figure with every artist in place; `draw` swaps in a client's data."""

    def __init__(self) -> None:
        figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        self.canvas = FigureCanvasAgg(figure)
        grid = figure.add_gridspec(2, 1, height_ratios=(3, 2), hspace=0.08)
        top = figure.add_subplot(grid[0])
        bottom = figure.add_subplot(grid[1], sharex=top)
        figure.subplots_adjust(left=0.08, right=0.83, top=0.91, bottom=0.1)
        self.figure = figure
        self.top = top
        self.bottom = bottom
        self.title = figure.suptitle("", fontsize=_FONT + 3, x=0.08, ha="left")
        self.total = _line(top, color=_BLUE, linewidth=3, marker="o", markersize=8)
        self.unfinished = _line(
            top,
            linestyle="none",
            marker="o",
            markersize=10,
            markerfacecolor="none",
            markeredgecolor=_BLUE,
            markeredgewidth=2,
        )
        self.missed = _line(
            top, linestyle="none", marker="x", markersize=12, color=_RED, markeredgewidth=3
        )
        # urgent alerts: a distinct mark along the top, explained in the notes beside the panel
        self.crises = _line(
            top, linestyle="none", marker="^", markersize=14, color=_CRISIS, zorder=5
        )
        self.cutoff = top.axhline(config.CUTOFF, color=_RED, linestyle="--", linewidth=2)
        self.cutoff_label = top.text(
            0.005,
            0,
            "",
            transform=top.get_yaxis_transform(),
            va="bottom",
            fontsize=_FONT - 3,
            color=_RED,
        )
        self.notes = top.text(
            1.01, 0.05, "", transform=top.transAxes, va="bottom", fontsize=_FONT - 3, color=_RED
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
        self.items = {
            item: _line(bottom, color=colour, linewidth=2, marker="o", markersize=5)
            for item, colour in _ITEM_COLOURS.items()
        }
        self.item_names = {
            item: bottom.text(
                1.02,
                0.95 - 0.22 * row,
                "",
                transform=bottom.transAxes,
                va="top",
                fontsize=_FONT - 3,
                color=colour,
            )
            for row, (item, colour) in enumerate(_ITEM_COLOURS.items())
        }
        self.flag = bottom.axhline(config.ITEM_FLAG, color=_RED, linestyle=":", linewidth=1.5)
        self.sessions: list[LineCollection] = []
        for axis in (top, bottom):
            collection = LineCollection(
                [], colors="#bbbbbb", linewidths=0.8, zorder=0, transform=axis.get_xaxis_transform()
            )
            axis.add_collection(collection)
            self.sessions.append(collection)
        self.total_label = top.set_ylabel("", fontsize=_FONT)
        self.items_label = bottom.set_ylabel("", fontsize=_FONT)
        self.lang = ""
        self.set_language("en")
        bottom.set_ylim(-0.5, config.ITEM_MAX + 0.5)
        bottom.set_yticks([0, 5, 10])
        for axis in (top, bottom):
            # fixed label places: otherwise every draw measures every tick label to place them
            axis.yaxis.set_label_coords(-0.055, 0.5)
            axis.xaxis.set_label_coords(0.5, -0.1)
            axis.tick_params(labelsize=_FONT - 2, length=0)
            axis.grid(axis="y", color="#eeeeee", linewidth=0.8)
            for side in ("top", "right"):
                axis.spines[side].set_visible(False)
        top.tick_params(labelbottom=False)
        top.xaxis.set_major_locator(FixedLocator([]))

    def set_language(self, lang: str) -> None:
        """The labels that stay from one chart to the next, in `lang` (only when it changes)."""
        if lang == self.lang:
            return
        self.lang = lang
        self.total_label.set_text(text(lang, "chart.total", max=config.TOTAL_MAX))
        self.items_label.set_text(text(lang, "chart.items", max=config.ITEM_MAX))
        for item, label in self.item_names.items():
            label.set_text(f"\u25cf {text(lang, f'chart.item.{item}')}")

    def draw(
        self,
        history: ClientHistory,
        now: datetime,
        cutoff: float,
        item_flag: int,
        lang: str = "en",
    ) -> bytes:
        self.set_language(lang)
        zone = history.zone()
        shown = [c for c in history.checkins if c.sent_at <= now]
        answered = [c for c in shown if c.answered_at is not None and c.answered_at <= now]
        missed = [c for c in shown if _missed_by(c, now)]
        self.title.set_text(text(lang, "chart.title", alias=history.alias))

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
        self.cutoff.set_ydata([cutoff, cutoff])
        self.cutoff_label.set_text(text(lang, "chart.cutoff", cutoff=decimal(f"{cutoff:g}", lang)))
        self.cutoff_label.set_y(cutoff + 0.4)
        self.flag.set_ydata([item_flag, item_flag])
        crises = [_num(c.at) for c in history.crises if c.at <= now]
        self.crises.set_data(crises, [config.TOTAL_MAX + 0.3] * len(crises))
        notes = [
            text(lang, key)
            for key, present in (
                ("chart.crisis", crises),
                ("chart.missed", missed),
                ("chart.unfinished", unfinished),
            )
            if present
        ]
        self.notes.set_text("\n".join(notes))
        self.empty.set_text("" if shown else text(lang, "chart.empty"))
        self.top.set_ylim(floor, config.TOTAL_MAX + 1)
        self.top.set_yticks(range(floor + (-floor % 10), config.TOTAL_MAX + 1, 10))
        for item, line in self.items.items():
            values = [
                (_num(c.answered_at), v)
                for c in answered
                if c.answered_at is not None and (v := c.scores.get(item)) is not None
            ]
            line.set_data([p[0] for p in values], [p[1] for p in values])
        sessions = [_num(s) for s in history.sessions if s <= now]
        for collection in self.sessions:
            collection.set_segments([[(x, 0.0), (x, 1.0)] for x in sessions])

        start = shown[0].sent_at if shown else now - timedelta(days=14)
        end = max(now, start + timedelta(days=7))
        self.top.set_xlim(_num(start - timedelta(days=1)), _num(end + timedelta(days=1)))
        ticks, labels = _date_ticks(start, end, zone, lang)
        self.bottom.set_xticks(ticks, labels)

        self.canvas.draw()
        return _png(np.asarray(self.canvas.buffer_rgba()))


def _line(axis: Axes, **style: object) -> Line2D:
    (line,) = axis.plot([], [], **style)  # type: ignore[arg-type]
    return line


def _date_ticks(
    start: datetime, end: datetime, zone: tzinfo, lang: str = "en"
) -> tuple[list[float], list[str]]:
    """Mondays, every one or every few weeks so that there are at most five, as '12 Jan'."""
    first = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    monday = first + timedelta(days=-first.weekday() % 7)
    weeks = (last - monday).days // 7 + 1
    step = max(1, -(-weeks // 5))
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
) -> bytes:
    """Draw the chart of everything known at `now`, labelled in `lang`; write it to
    `path_or_buffer` if given.

    Returns the PNG bytes either way.
    """
    template: _Template | None = getattr(_local, "template", None)
    if template is None:
        template = _local.template = _Template()
    data = template.draw(history, now, cutoff, item_flag, lang)
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
