"""A CUSUM over the last few steps of a growing series, carried forward as the series grows.

The accumulating rules judge a client on a bounded window of recent check-ins: the sum starts at
zero at the window's first check-in. Re-summing the window at every check-in is the simple way;
this keeps one running sum instead. Two CUSUMs over the same steps agree from the first step at
which the one begun earlier is at zero (the later one is never above it, and never below zero),
so the running sum answers for the window whenever it touched zero at or after the window's
start, which is almost always; only otherwise is the window summed afresh. The numbers are the
same, bit for bit, as summing the window each time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable


class WindowCusum:
    """`over` gives max(0, S + step(i) - k), begun at zero at `start`, after the step `end - 1`.

    `key` names everything the steps depend on besides the index (the thresholds, the baseline):
    when it changes, the running sum starts again.
    """

    __slots__ = ("end", "key", "last_zero", "origin", "score")

    def __init__(self) -> None:
        self.key: Hashable = None
        self.origin = 0
        self.end = 0
        self.score = 0.0
        self.last_zero = -1

    def over(
        self, key: Hashable, start: int, end: int, step: Callable[[int], float], k: float
    ) -> tuple[float, int]:
        """The sum after step `end - 1`, and where its final run above zero began (`end` if none).

        Steps are numbered as in the series; `start` and `end` never go back between calls with
        the same key (the series only grows).
        """
        if key == self.key and end == self.end + 1 and self.origin <= start <= self.end:
            # one more step, the usual case: max(0, S + x - k) written out
            score = self.score + step(self.end) - k
            if score > 0.0:
                self.score = score
            else:
                self.score = score = 0.0
                self.last_zero = self.end
            self.end = end
            if self.last_zero >= start - 1:
                return score, self.last_zero + 1
        if key != self.key or start < self.origin or start > self.end or end < self.end:
            self.key = key
            self._restart(start)
        score = self.score
        last_zero = self.last_zero
        for index in range(self.end, end):
            score = score + step(index) - k
            if not score > 0.0:
                score = 0.0
                last_zero = index
        if last_zero < start - 1:
            self._restart(start)
            score = 0.0
            last_zero = start - 1
            for index in range(start, end):
                score = score + step(index) - k
                if not score > 0.0:
                    score = 0.0
                    last_zero = index
        self.end = end
        self.score = score
        self.last_zero = last_zero
        return score, last_zero + 1

    def _restart(self, start: int) -> None:
        self.origin = start
        self.end = start
        self.score = 0.0
        self.last_zero = start - 1
