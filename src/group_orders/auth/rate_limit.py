"""Failed authentications per client address, to slow down token guessing.

A sliding window per address: once the failures in the last ``window_seconds`` reach
``max_failures``, the address is answered ``rate-limited`` with ``Retry-After`` until
enough of them have aged out. A failure weighs as much as the operations it would have
run (every batched operation, every root field and alias), so packing guesses into one
request gains nothing. In memory, per process: each API process limits on its own.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque


class FailureLimiter:
    def __init__(
        self, *, max_failures: int, window_seconds: float, max_addresses: int = 100_000
    ) -> None:
        self._max = max_failures
        self._window = window_seconds
        self._max_addresses = max_addresses
        # address -> (time, weight) of its failures in the window, oldest first
        self._failures: OrderedDict[str, deque[tuple[float, int]]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[tuple[float, int]] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0][0] <= now - self._window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def retry_after(self, address: str, now: float) -> int | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        if self._max <= 0:
            return None
        failures = self._recent(address, now)
        if failures is None or sum(weight for _, weight in failures) < self._max:
            return None
        # Wait until enough of the oldest failures leave the window.
        excess = sum(weight for _, weight in failures) - self._max + 1
        for at, weight in failures:
            excess -= weight
            if excess <= 0:
                return max(1, math.ceil(at + self._window - now))
        return max(1, math.ceil(self._window))

    def record(self, address: str, now: float, weight: int = 1) -> None:
        if self._max <= 0:
            return
        failures = self._recent(address, now)
        if failures is None:
            failures = self._failures[address] = deque()
            if len(self._failures) > self._max_addresses:
                self._failures.popitem(last=False)
        self._failures.move_to_end(address)
        failures.append((now, max(1, weight)))
