"""Liveness and readiness for process supervisors and load balancers."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from generation.engines import EngineHolder
from server.errors import error_response
from storage.database import ping


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    holder: EngineHolder = request.app.state.engine
    health = holder.health()
    if not health.ready or holder.engine is None:
        return error_response(503, "unavailable", health.reason or "the engine is not ready")
    try:
        await ping()
    except Exception as exc:
        return error_response(503, "unavailable", f"database unreachable: {exc}")
    info = holder.engine.info
    # Still ready while Redis is away: replicas serve degraded rather than all at once refuse.
    coordination = request.app.state.replica.coordinator.health()
    store = request.app.state.store
    return JSONResponse(
        {
            "status": "ready",
            "model": info.model,
            "engine": info.kind,
            "replica": request.app.state.replica.id,
            "coordination": {
                "backend": coordination.backend,
                "up": coordination.up,
                "reason": coordination.reason,
            },
            # The store never makes the server unready; failing reconciliation shows here.
            "store": {"enabled": store.enabled, "reconcile_failures": store.reconcile_failures},
        }
    )


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
