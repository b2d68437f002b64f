"""Failed-attempt counting over a sliding window, per key (a username, a client address)."""

import time
from collections import deque


class FailureLimiter:
    """Allows `limit` failures per key within `window` seconds; then refuses until one ages out."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, *keys: str) -> int:
        """Whole seconds until every key may try again; 0 when all may try now."""
        now = time.monotonic()
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if len(failures) >= self.limit:
                wait = max(wait, failures[0] + self.window - now)
        return int(wait) + 1 if wait > 0 else 0

    def fail(self, *keys: str) -> None:
        """Count one failure against each key."""
        now = time.monotonic()
        for key in keys:
            self._failures[key] = self._recent(key, now)
            self._failures[key].append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.pop(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if failures:
            # Keys with no recent failure are dropped, so scanning usernames cannot grow memory.
            self._failures[key] = failures
        return failures
