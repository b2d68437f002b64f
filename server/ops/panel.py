"""The ops panel's server side: /ws/ops pushes the socket table, /api/ops acts on sockets."""

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import psutil
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from generation.engines import EngineHolder
from server.admin.auth import AdminUser, admin_route, authenticate_admin, session_user
from server.config import Settings
from server.errors import ApiError
from server.ops.presence import Presence, Row, RowDiff
from server.security.sockets import (
    SocketCaps,
    SocketRefused,
    check_origin,
    closed_at_expiry,
    redeem_ticket,
)
from storage import audit

logger = logging.getLogger(__name__)

PUSH_INTERVAL_S = 1.0
CLOSE_BY_OPERATOR = 4000


class ProcessStats:
    """This process's CPU and memory; CPU is measured between calls at least 0.5 s apart."""

    MIN_INTERVAL_S = 0.5

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent(None)
        self._measured_at = time.monotonic()
        self._cpu = 0.0

    def view(self) -> dict[str, Any]:
        """`{"cpu_percent", "rss_bytes"}`; 100 % is one core fully busy."""
        now = time.monotonic()
        # Several panels polling at once would otherwise measure over a few milliseconds.
        if now - self._measured_at >= self.MIN_INTERVAL_S:
            self._cpu = self._process.cpu_percent(None)
            self._measured_at = now
        return {"cpu_percent": self._cpu, "rss_bytes": self._process.memory_info().rss}


def engine_view(holder: EngineHolder, settings: Settings, presence: Presence) -> dict[str, Any]:
    """The model and its queue; model and device are null until the model has loaded."""
    engine = holder.engine
    health = holder.health()
    return {
        "model": engine.info.model if engine else None,
        "device": engine.info.device if engine else None,
        "engine": holder.kind,
        "ready": health.ready,
        "reason": health.reason,
        "slots": engine.queue.slots if engine else settings.generation_slots,
        "running": engine.queue.running if engine else 0,
        "queue_depth": engine.queue.waiting if engine else 0,
        "tokens_per_s_1m": presence.tokens_per_s(),
    }


def _state(conn: Request | WebSocket) -> tuple[Presence, dict[str, Any]]:
    """The socket table and, beside it, the engine and process state of this moment."""
    app_state = conn.app.state
    presence: Presence = app_state.presence
    coordination = app_state.replica.coordinator.health()
    extra = {
        "replica": {
            "id": presence.replica_id,
            "coordination": coordination.backend,
            "up": coordination.up,
            "reason": coordination.reason,
        },
        "engine": engine_view(app_state.engine, app_state.settings, presence),
        "process": app_state.process_stats.view(),
        "t": datetime.now(UTC).isoformat(),
    }
    return presence, extra


async def snapshot(request: Request, admin: AdminUser) -> Response:
    presence, extra = _state(request)
    return JSONResponse({"sockets": await presence.snapshot(), **extra})


async def ops_socket(websocket: WebSocket) -> None:
    """Push the whole table once, then once a second what changed, until the panel leaves or
    the admin session that opened it expires."""
    await websocket.accept()
    caps: SocketCaps = websocket.app.state.socket_caps
    try:
        check_origin(websocket)
        admin = await _authenticate(websocket)
        host = websocket.client.host if websocket.client else "unknown"
        with caps.admit(f"admin:{admin.id}", host):
            async with closed_at_expiry(admin.expires_at.timestamp(), websocket.close):
                await _push(websocket, admin)
    except SocketRefused as exc:
        await exc.close(websocket)


async def _authenticate(websocket: WebSocket) -> AdminUser:
    """The admin of a `?ticket=`, a bearer header or the session cookie (the cookie is safe
    here only because check_origin has turned away other origins' pages)."""
    try:
        grant = await redeem_ticket(websocket, "ops")
        if grant is not None:
            return await session_user(grant.subject)
        return await authenticate_admin(websocket, write=False)
    except ApiError as exc:
        raise SocketRefused.from_api_error(exc) from None


async def _push(websocket: WebSocket, admin: AdminUser) -> None:
    logger.info("ops panel opened by %s", admin.username)
    gone = asyncio.create_task(_until_disconnect(websocket))
    rows = RowDiff()
    try:
        presence, extra = _state(websocket)
        snapshot, _ = rows.diff(presence.sockets(), await presence.other_rows())
        await websocket.send_json({"type": "snapshot", "sockets": snapshot, **extra})
        while not gone.done():
            await asyncio.wait({gone}, timeout=PUSH_INTERVAL_S)
            if gone.done():
                break
            presence, extra = _state(websocket)
            upsert, remove = rows.diff(presence.sockets(), await presence.other_rows())
            await websocket.send_json(
                {"type": "delta", "upsert": upsert, "remove": remove, **extra}
            )
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        gone.cancel()
        logger.info("ops panel of %s closed", admin.username)


async def _until_disconnect(websocket: WebSocket) -> None:
    # The panel sends nothing we act on; reading is how its leaving is noticed.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def disconnect(request: Request, admin: AdminUser) -> Response:
    presence: Presence = request.app.state.presence
    socket_id = request.path_params["socket_id"]
    row = await presence.kick(socket_id, CLOSE_BY_OPERATOR, "disconnected by operator")
    return await _audited(admin, "socket.kick", socket_id, row)


async def stop(request: Request, admin: AdminUser) -> Response:
    presence: Presence = request.app.state.presence
    socket_id = request.path_params["socket_id"]
    return await _audited(admin, "reply.stop", socket_id, await presence.stop(socket_id))


async def _audited(admin: AdminUser, action: str, socket_id: str, row: Row | None) -> Response:
    """204 after recording what was done to which socket; 404 if the socket was not open."""
    if row is None:
        raise ApiError(404, "not_found", f"no open chat socket {socket_id}")
    user_id = row["user"]["id"]
    detail = {
        "user_id": user_id,
        "remote": row["remote"],
        "tokens": row["tokens"],
        "replica": row["replica"],
    }
    await audit.record(admin.username, action, f"socket:{socket_id}", detail)
    logger.info(
        "%s by %s on socket %s of user %d (replica %s)",
        action,
        admin.username,
        socket_id,
        user_id,
        row["replica"],
    )
    return Response(status_code=204)


routes = [
    admin_route("/api/ops/snapshot", {"GET": (snapshot, False)}),
    admin_route("/api/ops/sockets/{socket_id}/disconnect", {"POST": (disconnect, True)}),
    admin_route("/api/ops/sockets/{socket_id}/stop", {"POST": (stop, True)}),
    WebSocketRoute("/ws/ops", ops_socket),
]
