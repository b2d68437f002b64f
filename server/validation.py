"""The one layer that checks what clients send: JSON (socket frames and request bodies alike),
ids, query parameters, and the string rules every field shares. A client's mistake becomes one
sentence naming the field and the limit, before anything is stored."""

import json
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from server.errors import ApiError

ModelT = TypeVar("ModelT", bound=BaseModel)

# Deeper than any request wxgpt understands; far below where Python's parser would recurse out.
MAX_JSON_DEPTH = 32
# Ids are 32-bit integer columns (PostgreSQL `integer`); a larger one names nothing stored.
ID_MAX = 2**31 - 1

Id = Annotated[int, Field(ge=1, le=ID_MAX)]


class InputError(ValueError):
    """Client input that breaks a rule; the message says which, and where."""


class StrictModel(BaseModel):
    """A request body or frame: `true` is not 1, `"5"` is not 5 and `5.0` is not 5."""

    model_config = ConfigDict(strict=True)


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored or sent back (None when it can): NUL, which PostgreSQL
    refuses in text, and lone UTF-16 surrogates, which are not characters at all."""
    if "\x00" in value:
        return "contains a NUL character (U+0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (U+D800 to U+DFFF), which is not a character"
    return None


def parse_json(text: str | bytes) -> Any:
    """Parse JSON text; raises InputError for invalid JSON, NaN or Infinity, nesting deeper than
    MAX_JSON_DEPTH, and strings (keys too) that break text_problem's rules."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InputError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(f"not valid JSON ({exc})") from None
    _check_tree(data)
    return data


def _no_constant(name: str) -> Any:
    raise InputError(f"not valid JSON ({name} is not a JSON number)")


def _check_tree(data: Any) -> None:
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                raise InputError(f"{where or 'body'}: {problem}")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise InputError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
            continue
        for key, item in value.items():
            problem = text_problem(key)
            if problem:
                raise InputError(f"a key in {where or 'the body'} {problem}")
            stack.append((item, f"{where}.{key}" if where else key, depth + 1))


def describe(exc: ValidationError) -> str:
    """'field: problem' for each error, joined; e.g. "content: Field required"."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def validate(model: type[ModelT], data: Any) -> ModelT:
    """`data` as `model`; raises InputError saying what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(describe(exc)) from None


async def read_json(request: Request) -> Any:
    """The request's JSON body ({} when empty); raises ApiError 400 saying what is wrong.

    Only application/json bodies reach here: BodyGuard refuses other types with 415."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        return parse_json(raw)
    except InputError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


async def read_body(request: Request, model: type[ModelT]) -> ModelT:
    """The request's JSON body as `model`; raises ApiError 400 saying what is wrong."""
    data = await read_json(request)
    try:
        return validate(model, data)
    except InputError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def query_int(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high]; raises ApiError 400 otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 20:
        raise ApiError(400, "bad_request", f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be between {low} and {high}")
    return value


def query_time(request: Request, name: str) -> datetime | None:
    """An ISO 8601 date or time query parameter (UTC unless it says otherwise), or None."""
    raw = query_text(request, name, max_chars=40)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            400, "bad_request", f"{name} must be an ISO 8601 date or time, like 2026-12-01"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def query_text(request: Request, name: str, max_chars: int = 200) -> str | None:
    """A text query parameter, stripped (None when absent or blank); raises ApiError 400 when
    it is too long or breaks the string rules."""
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    if len(value) > max_chars:
        raise ApiError(400, "bad_request", f"{name} is longer than {max_chars} characters")
    problem = text_problem(value)
    if problem:
        raise ApiError(400, "bad_request", f"{name} {problem}")
    return value


def path_id(request: Request, name: str) -> int:
    """An id from the path; one beyond what can be stored is answered like any unknown id."""
    value: int = request.path_params[name]
    if not 1 <= value <= ID_MAX:
        raise ApiError(404, "not_found", f"{name.removesuffix('_id')} {value} not found")
    return value
