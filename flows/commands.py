"""Slash commands, usable at any time. Most answer and then re-ask whatever was pending (the
check-in's current item, the onboarding step); /stop, /delete, /language, /timezone and /talk
(without a sentence) open a dialog. /pause during a check-in closes that check-in: a pause means
nothing is left open.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flows import checkin, dialogs, foreground
from flows.intents import Pause, Resume, ShowMyData
from flows.timezones import is_zone
from flows.turn import Turn

MAX_PAUSE_DAYS = 365
_NOT_DURING_ONBOARDING = frozenset({"pause", "resume", "timezone", "talk"})


def command_name(raw: str) -> str:
    """The bare command name: "/Pause@RapportBot" becomes "pause"."""
    return raw.strip().lstrip("/").split("@", 1)[0].casefold()


def pause_days(args: str) -> tuple[bool, int | None]:
    """(valid, days): days None means "until /resume"; "7", "7d", "7 days" all mean 7."""
    text = args.strip().casefold()
    if not text:
        return True, None
    number = text.split()[0].rstrip("dд")
    if not (number.isascii() and number.isdigit()) or not 1 <= int(number) <= MAX_PAUSE_DAYS:
        return False, None
    return True, int(number)


def local_date(turn: Turn, days: int) -> str:
    """The local calendar date `days` from now, written the way the client's language does."""
    zone = turn.ctx.timezone if turn.ctx.timezone and is_zone(turn.ctx.timezone) else "UTC"
    day = (turn.at + timedelta(days=days)).astimezone(ZoneInfo(zone))
    return turn.text("date.format", date=day.date())


def pause(turn: Turn, args: str) -> None:
    valid, days = pause_days(args)
    if not valid:
        turn.say(turn.text("command.pause_hint"))
        foreground.resume(turn)
        return
    checkin.close(turn)
    if days is None:
        turn.emit(Pause(None))
        turn.say(turn.text("command.paused"))
    else:
        turn.emit(Pause(turn.at + timedelta(days=days)))
        turn.say(turn.text("command.paused_until", date=local_date(turn, days)))


def run(turn: Turn, raw_name: str, args: str) -> None:
    """Carry out one command for a client who is onboarding, idle or in a check-in."""
    name = command_name(raw_name)
    onboarding = turn.machine == "onboarding"
    if onboarding and name in _NOT_DURING_ONBOARDING:
        turn.say(turn.text("onboarding.finish_first"))
        foreground.resume(turn)
        return
    if name == "stop":
        dialogs.open_dialog(turn, "ask_stop")
    elif name == "delete":
        dialogs.open_dialog(turn, "ask_delete")
    elif name == "language":
        dialogs.open_dialog(turn, "ask_language")
    elif name == "timezone":
        dialogs.open_dialog(turn, "ask_timezone")
    elif name == "talk" and not args.strip():
        dialogs.open_dialog(turn, "ask_talk")
    elif name == "talk":  # "/talk <a sentence>": sent as it is
        dialogs.send_talk(turn, args)
        foreground.resume(turn)
    elif name == "pause":
        pause(turn, args)
    else:
        if name == "resume":
            turn.emit(Resume())
            turn.say(turn.text("command.resumed"))
        elif name == "mydata":
            turn.emit(ShowMyData())
        elif name == "help":
            turn.say(turn.text("help.client", crisis=turn.crisis_resources))
        elif name == "start":
            if not onboarding:
                turn.say(turn.text("command.start_again"))
        else:
            turn.say(turn.text("command.unknown"))
        foreground.resume(turn)


def run_ended(turn: Turn, raw_name: str) -> None:
    """After /stop or a declined consent only a few commands still make sense."""
    name = command_name(raw_name)
    if name == "delete" and turn.state["state"] != "erased":
        dialogs.open_dialog(turn, "ask_delete")
    elif name == "mydata" and turn.state["state"] != "erased":
        turn.emit(ShowMyData())
    elif name == "help":
        turn.say(turn.text("help.client", crisis=turn.crisis_resources))
    else:
        turn.say(turn.text(f"ended.{turn.state['state']}"))
