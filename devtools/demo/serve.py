"""`rapport demo --serve`: after the story, the demo practice's console stays up, time stands
still, and a sign-in link is printed for its therapist (made an admin, to see every page)."""

from __future__ import annotations

from rich.console import Console

from app import admin
from app.console import new_link_token, set_role
from app.runtime import Runtime
from web.serve import console_server, parse_listen


async def serve_demo_console(rt: Runtime, listen: str, console: Console) -> None:
    """Serve until Ctrl-C; the link works once, like any sign-in link."""
    host, port = parse_listen(listen)
    therapist = (await admin.list_therapists(rt))[0]["id"]
    await set_role(rt, therapist, "admin")
    token = await new_link_token(rt, therapist, actor="demo")
    server = console_server(rt, host, port)
    console.print(
        "\n[bold]The demo practice's console is running[/bold] (time stands still; Ctrl-C ends it)."
        f"\nSign in (once, as the therapist, an admin here): http://{host}:{port}/signin/{token}"
    )
    await server.serve()
