"""Turn pydantic validation errors into one sentence a client developer can act on."""

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from server.errors import ApiError

ModelT = TypeVar("ModelT", bound=BaseModel)


def describe(exc: ValidationError) -> str:
    """'field: problem' for each error, joined; e.g. "content: Field required"."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


async def read_json(request: Request) -> Any:
    """The request's JSON body ({} when empty); raises ApiError 400 if it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None


async def read_body(request: Request, model: type[ModelT]) -> ModelT:
    """The request's JSON body as `model`; raises ApiError 400 saying what is wrong."""
    data = await read_json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "bad_request", describe(exc)) from None


def query_int(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high]; raises ApiError 400 otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be between {low} and {high}")
    return value
