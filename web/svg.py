"""Inline SVG for the pages: the caseload's sparkline and the client's trend chart. No script,
no inline style: the strict Content-Security-Policy allows them as they are."""

from __future__ import annotations

from collections.abc import Sequence

import segno
from markupsafe import Markup, escape


def _points(values: Sequence[int | None], width: float, height: float, top: float) -> list[str]:
    """`x,y` of each value on a scale 0..`top`; a gap (None) leaves no point."""
    step = width / max(len(values) - 1, 1)
    return [
        f"{i * step:.1f},{height - (v / top) * height:.1f}"
        for i, v in enumerate(values)
        if v is not None
    ]


def sparkline(values: Sequence[int | None], top: int, label: str) -> Markup:
    """A small line of the latest alliance totals; `label` says it in words for screen readers."""
    width, height = 96.0, 24.0
    points = _points(values, width, height - 2, top)
    line = (
        f'<polyline points="{" ".join(points)}" fill="none" stroke="currentColor" '
        'stroke-width="2"/>'
    )
    dots = ""
    if len(points) == 1:
        x, y = points[0].split(",")
        dots = f'<circle cx="{x}" cy="{y}" r="2" fill="currentColor"/>'
    return Markup(
        f'<svg class="spark" role="img" aria-label="{escape(label)}" viewBox="-2 -2 100 26" '
        f'width="100" height="26">{line if len(points) > 1 else ""}{dots}</svg>'
    )


def trend_chart(
    totals: Sequence[int | None],
    wellbeing: Sequence[int | None],
    top: int,
    cutoff: int,
    wellbeing_top: int,
    label: str,
) -> Markup:
    """The alliance total over time against its cut-off, with wellbeing on its own scale."""
    width, height = 600.0, 180.0
    cut = height - cutoff / top * height
    total = _points(totals, width, height, top)
    well = _points(wellbeing, width, height, wellbeing_top)
    circles = "".join(
        f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" class="pt"/>' for p in total
    )
    return Markup(
        f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="-8 -8 616 196">'
        f'<line x1="0" x2="{width}" y1="{cut:.1f}" y2="{cut:.1f}" class="cut"/>'
        f'<polyline points="{" ".join(well)}" class="well" fill="none"/>'
        f'<polyline points="{" ".join(total)}" class="total" fill="none"/>{circles}</svg>'
    )


def qr_code(link: str) -> Markup:
    """The invite link as a QR code to scan with a phone's camera (white margin included)."""
    code = segno.make(link, error="m")
    svg = code.svg_inline(scale=4, border=4, svgclass="qr", dark="#000", light="#fff")
    return Markup(
        svg.replace("<svg ", '<svg role="img" aria-label="QR code of the invite link" ', 1)
    )
