"""How many admin logins may be tried, per account, per client address and per device.

Built as OWASP's guidance on slowing online guessing describes:
- Every attempt is counted before the password is checked, in one atomic increment of a
  shared counter, so a hundred concurrent guesses cannot all pass a check made before any
  failure was recorded; only the first `attempts` in a window reach the password check.
- A success clears the account's (or the device's) count and takes its own attempt back
  from the address's, so what stays counted are failures, until the window ends. Hitting
  the limit locks the key out, for the window the first time and twice as long each time
  after (backoff), with a day's memory of strikes.
- A browser that logged in as an account before carries a signed device cookie; its
  attempts count against that device instead of the account, so an attacker who locks the
  account out for everyone else cannot lock its owner's own browser out.
- Counters live in the coordinator: with Redis, every replica counts the same attempts.
"""

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from server.coordination.base import Coordinator

DEVICE_COOKIE = "wxgpt_device"
DEVICE_TTL_S = 90 * 24 * 3600
STRIKES_MEMORY_S = 24 * 3600
MAX_LOCKOUT_S = 24 * 3600


class LoginLocked(Exception):
    """Too many attempts; `retry_after` says in how many whole seconds to try again."""

    def __init__(self, retry_after: int, attempts: int, window: int) -> None:
        super().__init__(
            f"too many failed logins ({attempts} per {window} s); try again in {retry_after} s"
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Attempt:
    """A login attempt let through to the password check, and the keys it was counted on."""

    username: str
    keys: tuple[str, ...]
    # Set when the attempt came from a device the account logged in from before.
    device: str | None


class LoginLimiter:
    """Counts admin login attempts in the coordinator; see the module docstring."""

    def __init__(
        self, coordinator: Coordinator, *, attempts: int, window: float, secret_key: str
    ) -> None:
        self._coordinator = coordinator
        self.attempts = attempts
        self.window = window
        self._devices = URLSafeTimedSerializer(secret_key, salt="wxgpt-admin-device")

    async def begin(self, username: str, address: str, device_cookie: str | None) -> Attempt:
        """Count one attempt; raises LoginLocked if any of its keys is over the limit."""
        device = self._device_of(username, device_cookie)
        account_key = f"device:{device}" if device else f"account:{username}"
        keys = (account_key, f"address:{address}")
        for key in keys:
            left = await self._coordinator.ttl(_lock(key))
            if left > 0:
                raise self._locked(left)
        counts = [await self._coordinator.incr(_count(key), self.window) for key in keys]
        over = [key for key, count in zip(keys, counts, strict=True) if count > self.attempts]
        if over:
            raise self._locked(max([await self._lock_out(key) for key in over]))
        return Attempt(username, keys, device)

    async def succeeded(self, attempt: Attempt) -> str:
        """The password was right: clear the account's count and take the attempt back from
        the address's; returns the device cookie to set (the one presented, or a new one)."""
        account, address = attempt.keys
        await self._coordinator.delete(_count(account))
        await self._coordinator.incr(_count(address), self.window, by=-1)
        device = attempt.device or secrets.token_urlsafe(16)
        return self._devices.dumps({"u": attempt.username, "d": device})

    def _device_of(self, username: str, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            payload = self._devices.loads(cookie, max_age=DEVICE_TTL_S)
        except BadSignature:
            return None
        if not isinstance(payload, dict) or payload.get("u") != username:
            return None
        device = payload.get("d")
        return device if isinstance(device, str) else None

    async def _lock_out(self, key: str) -> float:
        strikes = await self._coordinator.incr(_strikes(key), STRIKES_MEMORY_S)
        seconds = min(self.window * float(2 ** (strikes - 1)), MAX_LOCKOUT_S)
        await self._coordinator.set(_lock(key), "1", seconds)
        await self._coordinator.delete(_count(key))
        return seconds

    def _locked(self, seconds: float) -> LoginLocked:
        return LoginLocked(int(seconds) + 1, self.attempts, int(self.window))


def _count(key: str) -> str:
    return f"login:count:{key}"


def _lock(key: str) -> str:
    return f"login:lock:{key}"


def _strikes(key: str) -> str:
    return f"login:strikes:{key}"
