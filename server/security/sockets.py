"""What every WebSocket endpoint checks before it serves anyone: the page's origin, the
credential (a ticket from server/security/tickets.py or a bearer header), how many sockets
the user and the address already hold; and that a socket closes when its credential expires."""

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from starlette.websockets import WebSocket

from server.errors import ApiError
from server.security.origins import Origins
from server.security.tickets import Grant, SocketKind, TicketBook

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY = 4429
# A close frame's reason is at most 123 bytes of UTF-8.
MAX_REASON_BYTES = 123

CloseSocket = Callable[[int, str], Awaitable[None]]


class SocketRefused(Exception):
    """The socket may not be served; it is closed with `code` and `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    @classmethod
    def from_api_error(cls, exc: ApiError) -> "SocketRefused":
        """4403 for a refusal (banned, forbidden), 4401 for a missing or bad credential."""
        return cls(CLOSE_FORBIDDEN if exc.status == 403 else CLOSE_UNAUTHORIZED, exc.message)

    async def close(self, websocket: WebSocket) -> None:
        """Close the accepted socket with this code and reason."""
        await websocket.close(code=self.code, reason=close_reason(self.reason))


def close_reason(text: str) -> str:
    """`text` cut to what a close frame can carry, on a character boundary."""
    return text.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


def check_origin(websocket: WebSocket) -> None:
    """Raises SocketRefused 4403 when a page of a disallowed origin opened the socket."""
    origins: Origins = websocket.app.state.origins
    refusal = origins.refusal(websocket.scope)
    if refusal is not None:
        raise SocketRefused(CLOSE_FORBIDDEN, refusal)


async def redeem_ticket(websocket: WebSocket, socket: SocketKind) -> Grant | None:
    """The grant of the `?ticket=` the socket came with; None when it brought none; raises
    SocketRefused 4401 for one that is unknown, used, expired or for another socket."""
    ticket = websocket.query_params.get("ticket")
    if not ticket:
        return None
    tickets: TicketBook = websocket.app.state.tickets
    grant = await tickets.redeem(ticket, socket)
    if grant is None:
        raise SocketRefused(
            CLOSE_UNAUTHORIZED, "the ticket is unknown, used or expired; get a new one"
        )
    return grant


class SocketCaps:
    """Counts open sockets per user and per client address, refusing those past the limits."""

    def __init__(self, per_user: int, per_address: int) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self._users: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()

    @contextlib.contextmanager
    def admit(self, user: str, address: str) -> Iterator[None]:
        """Hold a place for one socket of `user` from `address` while the block runs; raises
        SocketRefused 4429 when either already has as many as allowed."""
        if self._users[user] >= self.per_user:
            raise SocketRefused(
                CLOSE_TOO_MANY,
                f"too many sockets: this account has {self._users[user]} open, "
                f"the limit is {self.per_user}",
            )
        if self._addresses[address] >= self.per_address:
            raise SocketRefused(
                CLOSE_TOO_MANY,
                f"too many sockets: this address has {self._addresses[address]} open, "
                f"the limit is {self.per_address}",
            )
        self._users[user] += 1
        self._addresses[address] += 1
        try:
            yield
        finally:
            for counts, key in ((self._users, user), (self._addresses, address)):
                counts[key] -= 1
                if counts[key] <= 0:
                    del counts[key]


@contextlib.asynccontextmanager
async def closed_at_expiry(expires_at: float, close: CloseSocket) -> AsyncIterator[None]:
    """While the block runs, close the socket with 4401 once `expires_at` (seconds since the
    epoch) has passed: a socket lives no longer than the credential that opened it."""

    async def close_later() -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await close(CLOSE_UNAUTHORIZED, "token expired; log in again")

    timer = asyncio.create_task(close_later())
    try:
        yield
    finally:
        timer.cancel()
