"""Liveness and readiness for process supervisors and load balancers."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.chat.replies import ModelHolder
from server.errors import error_response
from storage.database import ping


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    holder: ModelHolder = request.app.state.model
    if holder.error is not None:
        return error_response(503, "unavailable", f"model failed to load: {holder.error}")
    if holder.engine is None:
        return error_response(503, "unavailable", "model is loading")
    try:
        await ping()
    except Exception as exc:
        return error_response(503, "unavailable", f"database unreachable: {exc}")
    return JSONResponse({"status": "ready", "model": holder.engine.loaded.name})


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
