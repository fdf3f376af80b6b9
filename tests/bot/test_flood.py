"""The door's per-sender throttle, on an injected clock."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from bot.flood import InboundThrottle, Verdict


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_flood_is_handled_up_to_the_burst_then_noticed_once_then_dropped() -> None:
    clock = Clock()
    door = InboundThrottle(burst=20, rate=0.5, notice_every=60, clock=clock)
    verdicts = [door.admit(7) for _ in range(1000)]
    assert verdicts[:20] == [Verdict.HANDLE] * 20
    assert verdicts[20] == Verdict.NOTICE
    assert set(verdicts[21:]) == {Verdict.DROP}
    assert door.dropped == 980


def test_one_sender_flooding_leaves_another_untouched() -> None:
    door = InboundThrottle(burst=5, rate=0.5, clock=Clock())
    for _ in range(100):
        door.admit(1)
    assert door.admit(2) == Verdict.HANDLE


def test_crisis_language_is_always_handled() -> None:
    door = InboundThrottle(burst=3, rate=0.5, clock=Clock())
    for _ in range(50):
        door.admit(1)
    assert door.admit(1, urgent=True) == Verdict.HANDLE


def test_the_bucket_refills_and_a_later_flood_is_noticed_again() -> None:
    clock = Clock()
    door = InboundThrottle(burst=4, rate=0.5, notice_every=60, clock=clock)
    assert [door.admit(1) for _ in range(6)][-2:] == [Verdict.NOTICE, Verdict.DROP]
    clock.t += 2  # one update's worth
    assert door.admit(1) == Verdict.HANDLE
    assert door.admit(1) == Verdict.DROP  # still the same flood: no second notice
    clock.t += 61
    assert [door.admit(1) for _ in range(4)] == [Verdict.HANDLE] * 4
    assert door.admit(1) == Verdict.NOTICE


def test_a_client_answering_a_check_in_at_human_speed_is_never_throttled() -> None:
    clock = Clock()
    door = InboundThrottle(clock=clock)
    for _ in range(12):  # two check-ins' worth of taps, a second apart, and a comment
        assert door.admit(1) == Verdict.HANDLE
        clock.t += 1


def test_memory_is_bounded() -> None:
    door = InboundThrottle(kept=100, clock=Clock())
    for sender in range(1000):
        door.admit(sender)
    assert len(door._buckets) == 100


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 10), st.booleans()), max_size=300))
def test_never_more_handled_than_the_burst_plus_refill(
    steps: list[tuple[int, float, bool]],
) -> None:
    clock = Clock()
    door = InboundThrottle(burst=5, rate=0.5, notice_every=60, clock=clock)
    handled: dict[int, int] = {}
    urgent_count: dict[int, int] = {}
    notices: dict[int, list[float]] = {}
    start = clock.t
    for sender, wait, urgent in steps:
        clock.t += wait
        verdict = door.admit(sender, urgent=urgent)
        if verdict == Verdict.HANDLE:
            handled[sender] = handled.get(sender, 0) + 1
            urgent_count[sender] = urgent_count.get(sender, 0) + urgent
        elif verdict == Verdict.NOTICE:
            notices.setdefault(sender, []).append(clock.t)
    elapsed = clock.t - start
    for sender, n in handled.items():
        assert n - urgent_count[sender] <= 5 + elapsed * 0.5 + 1e-9
    for times in notices.values():
        assert all(b - a >= 60 for a, b in pairwise(times))


def test_crisis_words_are_looked_for_only_when_the_door_would_close() -> None:
    door = InboundThrottle(burst=2, rate=0.5, clock=Clock())
    asked: list[int] = []

    def crisis() -> bool:
        asked.append(1)
        return True

    assert [door.admit(1, urgent=crisis) for _ in range(3)] == [Verdict.HANDLE] * 3
    assert len(asked) == 1  # the third only
