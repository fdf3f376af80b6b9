"""Console: server time per page with 1,000 clients in the practice (target: median < 100 ms).

Run: .venv/bin/python bench/console_bench.py [--quick] [--clients 1000] [--weeks 12] [--repeats 30]

The practice has `--clients` active clients, 100 per therapist, each with a weekly history of
`--weeks` check-ins (answers on every item, some missed). Each page is requested in this
process through the console's ASGI app (no network, no browser): the time from the request to
the last byte of the answer, signed in, session check and audit row included, and the CPU time
this process spent on it (steadier than the wall time on a shared machine). Pages: a
therapist's caseload (100 clients) and a client page; the admin's view of another therapist's
caseload, the people page (every client), the settings and the audit log. The verdict is on the
slowest page's median.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from app import admin
from app.console import new_link_token, set_role
from app.console_alerts import ConsoleAlerts
from bench.common import database, make_runtime, median, ms, percentile, summary
from bench.population import add_checkins, populate
from web.app import console_app

TARGET = 0.100


async def signed_in(app: object, token: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")  # type: ignore[arg-type]
    page = await client.get(f"/signin/{token}")
    pre = page.text.split('name="pre" value="', 1)[1].split('"', 1)[0]
    answer = await client.post("/signin", data={"token": token, "pre": pre})
    assert answer.status_code == 303, answer.status_code
    return client


async def timed(
    client: httpx.AsyncClient, path: str, repeats: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each request (CPU: this process's, which serves it alone)."""
    wall, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        answer = await client.get(path)
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        assert answer.status_code == 200, (path, answer.status_code)
    return wall, cpu


async def export_every_client(chief: httpx.AsyncClient) -> None:
    """The admin's export of every client (a download, not a page: timed once, no verdict)."""
    page = await chief.get("/people")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    began = time.perf_counter()
    answer = await chief.post("/people/export", data={"csrf": csrf, "format": "json"})
    took = time.perf_counter() - began
    assert answer.status_code == 200, answer.status_code
    print(f"  export of every client (JSON)   {ms(took)}, {len(answer.content) / 1e6:.1f} MB")


async def main(clients: int, weeks: int, repeats: int) -> int:
    async with database("sqlite") as url:
        rt = make_runtime(url)
        try:
            now = rt.clock.now()
            await populate(rt, clients, now=now)
            ids = [c["id"] for c in await admin.list_clients(rt)]
            written = await add_checkins(rt, ids, now, weeks=weeks)
            therapists = [t["id"] for t in await admin.list_therapists(rt)]
            boss = (await admin.add_therapist(rt, "Bench Admin", "Europe/Berlin"))["id"]
            await set_role(rt, boss, "admin")
            app = console_app(rt, alerts=ConsoleAlerts())
            therapist = await signed_in(app, await new_link_token(rt, therapists[0]))
            chief = await signed_in(app, await new_link_token(rt, boss))
            code = (await admin.list_clients(rt, therapists[0]))[0]["code"]
            pages = {
                "caseload (100 clients)": (therapist, "/caseload"),
                "client page": (therapist, f"/clients/{code}"),
                "settings": (chief, "/settings"),
                "people (1,000 clients)": (chief, "/people"),
                "audit log": (chief, "/audit"),
                "admin: a therapist's caseload": (chief, f"/caseload?therapist={therapists[1]}"),
            }
            print(f"{clients} clients, {len(therapists)} therapists, {written} check-ins")
            medians, cpu_medians = {}, {}
            for name, (client, path) in pages.items():
                await timed(client, path, 2)  # warm-up: templates compiled, caches filled
                took, cpu = await timed(client, path, repeats)
                medians[name], cpu_medians[name] = median(took), median(cpu)
                print(
                    f"  {name:31s} median {ms(median(took))}, p90 {ms(percentile(took, 90))}, "
                    f"min {ms(min(took))}; CPU median {ms(median(cpu))}"
                )
            await export_every_client(chief)
            print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            for client in (therapist, chief):
                await client.aclose()
        finally:
            await rt.close()
    worst = max(medians, key=lambda k: medians[k])
    ok = medians[worst] < TARGET
    print(
        summary(
            "console",
            f"slowest page median {ms(medians[worst])} ({worst}; CPU {ms(cpu_medians[worst])}); "
            f"all-page median {ms(statistics.median(medians.values()))}",
            "median < 100 ms per page at 1,000 clients",
            ok,
        )
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 10 if args.quick else args.repeats
    raise SystemExit(asyncio.run(main(args.clients, args.weeks, repeats)))
