"""The demo's closing pages: the last digest the therapist got for each client, a table of what
happened, and the checklist that decides the exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from devtools.demo.checks import Check
from devtools.demo.report import ClientFacts
from insights.texts import signal_name


def print_digests(console: Console, facts: list[ClientFacts]) -> None:
    console.rule("[bold]The last digest the therapist received for each client")
    for client in facts:
        if not client.digests:
            console.print(f"{client.alias}: no digest received")
            continue
        last = client.digests[-1].received
        chart = f" · chart: {last.chart_file}" if last.chart_file else ""
        console.print(
            Panel(
                last.text,
                title=f"{client.alias} · {client.title}",
                subtitle=f"received {len(client.digests)} digests{chart}",
                expand=False,
            )
        )


def print_summary(
    console: Console, facts: list[ClientFacts], checks: list[Check], summary: dict[str, Any],
    out: Path,
) -> None:  # fmt: skip
    table = Table(title="Rapport demo: what happened", title_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("client", no_wrap=True)
    table.add_column("story", no_wrap=True)
    for column in ("sent", "answered", "missed"):
        table.add_column(column, justify="right")
    table.add_column("flagged")
    table.add_column("last digest")
    for client in facts:
        data = summary["clients"][client.alias]
        counts = data["checkins"]
        last = data["last_digest"] or {}
        if not last:
            verdict = "-"
        elif last["all_well"]:
            verdict = "all well"
        elif last["too_little_data"]:
            verdict = "too little data"
        else:
            serious = [signal_name(s["code"]) for s in last["signals"] if s["severity"] != "info"]
            verdict = ", ".join(serious) or "notes only"
        table.add_row(
            client.alias,
            client.story,
            str(counts["sent"]),
            str(counts["answered"]),
            str(counts["missed"]),
            "yes" if data["flagged_before_session"] else "no",
            verdict,
        )
    console.print(table)
    alerts = summary["crisis_alerts"]
    simulated = summary["simulated"]
    console.print(
        f"{simulated['days']} simulated days in {summary['wall_seconds']} s · "
        f"{len(summary['charts'])} digest charts and summary.json in {out} · "
        f"{len(alerts)} urgent alert(s)"
    )
    for check in checks:
        mark = "[green]✔[/green]" if check.ok else "[red]✘[/red]"
        console.print(f"{mark} {check.name}: {check.detail}")
    verdict = "[bold green]the story held[/]" if summary["ok"] else "[bold red]checks failed[/]"
    console.print(verdict)
