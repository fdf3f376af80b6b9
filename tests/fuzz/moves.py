"""What a person may do to the bot, as hypothesis strategies: any text (control characters,
right-to-left scripts, emoji, 5,000 characters), typed answers, media, edits, commands with junk
arguments, taps on real buttons, forged or stale callback data, and messages in a group."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

COMMANDS = (
    "start", "help", "pause", "resume", "stop", "delete", "mydata", "language", "timezone",
    "clients", "digest", "session", "invite", "settings", "x",
)  # fmt: skip
_ODD = "\u202e\u200f\u061c\u200b\ufeff\x00\x07\x1b\r\t\n"  # bidi marks, zero width, controls
_SCRIPTS = "שלוםمرحباпривет日本語🙂👍🏽🇩🇪‍❤️🔥"

characters = st.characters(exclude_categories=["Cs"])  # lone surrogates cannot be sent
free_text = st.one_of(
    st.text(characters, min_size=1, max_size=40),
    st.text(st.sampled_from(_ODD + _SCRIPTS + "ab 7"), min_size=1, max_size=60),
    st.builds(
        lambda unit, n: (unit * n)[:5000],
        st.text(characters, min_size=1, max_size=4),
        st.integers(1000, 5000),
    ),
)
typed_answer = st.one_of(
    st.integers(-3, 13).map(str),
    st.sampled_from(["yes", "no", "Yes!", "нет", "sí", " 7 ", "7/10", "10.", "seven", "ok"]),
)
command = st.builds(
    lambda name, args: f"/{name} {args}".rstrip(),
    st.sampled_from(COMMANDS),
    st.one_of(st.just(""), st.text(characters, max_size=30)),
)
staff_command = st.builds(
    lambda name, alias, rest: f"/{name} {alias} {rest}".rstrip(),
    st.sampled_from(("digest", "pause", "resume", "session", "clients", "alerts", "invite")),
    st.sampled_from(("K000", "K001", "k001", "Z000", "O.N.", "")),
    st.sampled_from(("", "tue 15:00", "2d", "tomorrow 9:00", "x")),
)
well_formed_forgery = st.builds(
    lambda checkin, index, value: f"c:{checkin}:{index}:{value}",
    st.one_of(st.integers(0, 10**6), st.sampled_from(["-1", "x", "", "01"])),
    st.one_of(st.integers(0, 12), st.sampled_from(["-1", "a", ""])),
    st.one_of(st.integers(-2, 12).map(str), st.sampled_from(["n", "s", "y", "", "7:7"])),
)
forged_data = st.one_of(
    well_formed_forgery,
    st.text(characters, max_size=64),
    st.builds(lambda o, rest: f"{o}:{rest}", st.sampled_from("odcz"), st.text(max_size=20)),
)


@dataclass(frozen=True)
class Move:
    """One thing one person does. `who` indexes the people of the example (a stranger last)."""

    who: int
    kind: str  # text | sticker | photo | voice | edit | tap | tap_last | forge | group
    text: str = ""
    pick: int = 0

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 30 else f"{self.text[:27]}...({len(self.text)})"
        return f"Move({self.who}, {self.kind}, {shown!r}, {self.pick})"


def moves(people: int) -> st.SearchStrategy[Move]:
    who = st.integers(0, people - 1)
    pick = st.integers(0, 1000)
    return st.one_of(
        st.builds(Move, who, st.just("text"), typed_answer, pick),
        st.builds(Move, who, st.just("text"), st.one_of(free_text, command), pick),
        st.builds(Move, who, st.just("text"), staff_command, pick),
        st.builds(Move, who, st.just("tap"), st.just(""), pick),
        st.builds(Move, who, st.just("tap_last"), st.just(""), pick),
        st.builds(Move, who, st.just("forge"), forged_data, pick),
        st.builds(Move, who, st.sampled_from(["sticker", "photo", "voice"]), st.just(""), pick),
        st.builds(Move, who, st.just("edit"), free_text, pick),
        st.builds(Move, who, st.just("group"), st.one_of(command, free_text), pick),
    )
