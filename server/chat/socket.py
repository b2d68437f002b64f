"""The /ws/chat endpoint: one socket's life, from the token check to the last reply stored."""

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from server import logs
from server.accounts.tokens import active_user, authenticate_claim
from server.chat import protocol
from server.chat.live_replies import Watcher
from server.chat.protocol import (
    ChatFrame,
    FrameError,
    PingFrame,
    ResumeFrame,
    StopFrame,
    parse_frame,
)
from server.chat.replies import ReplyService
from server.config import Settings
from server.errors import ApiError
from server.ops.presence import Presence, SocketPresence
from server.security.sockets import (
    SocketCaps,
    SocketRefused,
    check_origin,
    closed_at_expiry,
    redeem_ticket,
)
from server.views import user_view
from storage.models import User
from storage.users import touch_last_seen

logger = logging.getLogger(__name__)


class FrameSender:
    """Sends JSON frames one at a time; after the client has gone, sending is a no-op."""

    def __init__(self, websocket: WebSocket, row: SocketPresence) -> None:
        self._websocket = websocket
        self._row = row
        self._lock = asyncio.Lock()
        self.open = True

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame unless the socket is gone; never raises for a closed socket."""
        if not self.open:
            return
        text = json.dumps(frame, ensure_ascii=False)
        async with self._lock:
            try:
                await self._websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.open = False
                return
        self._row.sent(frame, len(text.encode()))

    async def close(self, code: int, reason: str) -> None:
        """Close the socket from the server's side (an operator, a ban); no frame follows."""
        async with self._lock:
            if not self.open:
                return
            self.open = False
            try:
                await self._websocket.close(code=code, reason=reason)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return


async def chat_socket(websocket: WebSocket) -> None:
    """Serve one chat socket until the client closes it or its token expires."""
    await websocket.accept()
    caps: SocketCaps = websocket.app.state.socket_caps
    try:
        check_origin(websocket)
        user, expires_at = await _authenticate(websocket)
        with caps.admit(f"user:{user.id}", _host(websocket)):
            await _serve_socket(websocket, user, expires_at)
    except SocketRefused as exc:
        await exc.close(websocket)


async def _authenticate(websocket: WebSocket) -> tuple[User, float]:
    """The user of a `?ticket=` or a bearer header, and when their credential expires."""
    try:
        grant = await redeem_ticket(websocket, "chat")
        if grant is not None:
            return await active_user(int(grant.subject)), grant.expires_at
        user, claim = await authenticate_claim(websocket)
        return user, claim.expires_at
    except ApiError as exc:
        raise SocketRefused.from_api_error(exc) from None


async def _serve_socket(websocket: WebSocket, user: User, expires_at: float) -> None:
    await touch_last_seen(user.id)
    settings: Settings = websocket.app.state.settings
    service: ReplyService = websocket.app.state.replies
    presence: Presence = websocket.app.state.presence
    row = SocketPresence(user, _remote(websocket))
    sender = FrameSender(websocket, row)
    presence.add(row, sender.close)
    logs.socket_id.set(row.id)
    logger.info("chat socket opened by user %d from %s", user.id, row.remote)
    free = await service.free_day()
    await sender.send(protocol.ready(user_view(user), user.quota, free.left(user)))
    running: tuple[asyncio.Task[None], Watcher] | None = None
    try:
        async with closed_at_expiry(expires_at, sender.close):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                row.received(_size(message))
                if message.get("text") is None:
                    await sender.send(
                        protocol.error(
                            "bad_request", "binary frames are not supported; send JSON text"
                        )
                    )
                    continue
                try:
                    frame = parse_frame(
                        message["text"],
                        max_bytes=settings.max_frame_bytes,
                        max_chars=settings.max_message_chars,
                    )
                except FrameError as exc:
                    await sender.send(protocol.error(exc.code, exc.message))
                    continue
                if running is not None and running[0].done():
                    running = None
                if isinstance(frame, PingFrame):
                    await sender.send(protocol.PONG)
                elif isinstance(frame, StopFrame):
                    # A stop with no reply running is not an error: it often crosses a `done`.
                    if running is not None:
                        running[1].stop()
                elif isinstance(frame, ChatFrame | ResumeFrame):
                    if running is not None:
                        await sender.send(
                            protocol.error(
                                "busy", "a reply is still streaming on this socket; stop it first"
                            )
                        )
                        continue
                    watcher = Watcher(sender.send)
                    row.reply_started(watcher)
                    task = asyncio.create_task(_serve(service, user, frame, sender, watcher))
                    task.add_done_callback(lambda _: row.reply_ended())
                    running = (task, watcher)
    finally:
        sender.open = False
        if running is not None and not running[0].done():
            # The reply goes on without this socket, for the grace period if nobody else
            # watches it. Wait for a reply being accepted right now to be handed over.
            running[1].leave()
            await asyncio.shield(running[0])
        presence.remove(row)
        logger.info("chat socket closed: %d bytes in, %d out", row.bytes_in, row.bytes_out)


def _size(message: Mapping[str, Any]) -> int:
    text, data = message.get("text"), message.get("bytes")
    return len(text.encode()) if text is not None else len(data or b"")


def _remote(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{client.host}:{client.port}" if client else "unknown"


def _host(websocket: WebSocket) -> str:
    return websocket.client.host if websocket.client else "unknown"


async def _serve(
    service: ReplyService,
    user: User,
    frame: ChatFrame | ResumeFrame,
    sender: FrameSender,
    watcher: Watcher,
) -> None:
    try:
        if isinstance(frame, ChatFrame):
            await service.reply(user.id, user.openid, frame, watcher)
        else:
            await service.resume(user.id, frame, watcher)
    except FrameError as exc:
        await sender.send(protocol.error(exc.code, exc.message))
    except Exception:
        logger.exception("chat frame from user %d failed", user.id)
        await sender.send(
            protocol.error("internal", "internal server error; the cause is in the server log")
        )
