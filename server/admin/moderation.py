"""The moderation page's API: cases (blocked text, users' reports), their actions, the word list."""

from typing import Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.admin.auth import AdminUser, admin_route
from server.errors import ApiError
from server.safety.checks import ContentChecker
from server.safety.words import MAX_WORD_CHARS, MAX_WORDS, load_words, save_words
from server.validation import (
    ID_MAX,
    StrictModel,
    path_id,
    query_int,
    query_text,
    query_time,
    read_body,
)
from server.views import case_view
from storage import audit, directory, moderation
from storage.models import CaseKind, CaseState
from storage.moderation import CaseNotFound

MAX_PAGE_SIZE = 100


class WordsBody(StrictModel):
    words: list[str] = Field(max_length=MAX_WORDS)


class ActionBody(StrictModel):
    action: Literal["dismiss", "ban"]
    reason: str = Field("", max_length=200)


def _choice(request: Request, name: str, kind: type[CaseKind] | type[CaseState]) -> str | None:
    value = query_text(request, name)
    allowed = [member.value for member in kind]
    if value is not None and value not in allowed:
        raise ApiError(400, "bad_request", f"{name} must be one of {', '.join(allowed)}")
    return value


async def list_cases(request: Request, admin: AdminUser) -> Response:
    page = query_int(request, "page", 1, 1, 10**6) or 1
    size = query_int(request, "page_size", 20, 1, MAX_PAGE_SIZE) or 20
    state = _choice(request, "state", CaseState)
    kind = _choice(request, "kind", CaseKind)
    cases, total = await moderation.list_cases(
        state=CaseState(state) if state else None,
        kind=CaseKind(kind) if kind else None,
        user_id=query_int(request, "user_id", None, 1, ID_MAX),
        since=query_time(request, "since"),
        until=query_time(request, "until"),
        offset=(page - 1) * size,
        limit=size,
    )
    items = [case_view(case) for case in cases]
    return JSONResponse({"items": items, "total": total, "page": page, "page_size": size})


async def act_on_case(request: Request, admin: AdminUser) -> Response:
    """Dismiss a case, or ban its user (which closes their other open cases too)."""
    case_id = path_id(request, "case_id")
    body = await read_body(request, ActionBody)
    try:
        if body.action == "dismiss":
            case = await moderation.resolve_case(case_id, CaseState.DISMISSED, admin.username)
            await audit.record(admin.username, "case.dismiss", f"case:{case_id}")
            return JSONResponse(case_view(case))
        case = await moderation.resolve_case(case_id, CaseState.BANNED, admin.username)
    except CaseNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    await directory.set_banned(case.user_id, True)
    closed = await request.app.state.presence.close_user(case.user_id, code=4403, reason="banned")
    others = await moderation.close_open_cases(case.user_id, admin.username)
    await audit.record(
        admin.username,
        "user.ban",
        f"user:{case.user_id}",
        {"reason": body.reason, "case": case_id, "sockets": closed, "cases_closed": others},
    )
    await case.user.refresh_from_db(fields=["banned"])
    return JSONResponse(case_view(case))


async def get_words(request: Request, admin: AdminUser) -> Response:
    return JSONResponse(
        {"words": await load_words(), "max_words": MAX_WORDS, "max_word_chars": MAX_WORD_CHARS}
    )


async def put_words(request: Request, admin: AdminUser) -> Response:
    body = await read_body(request, WordsBody)
    try:
        words = await save_words(body.words)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    checker: ContentChecker = request.app.state.checker
    checker.words.invalidate()
    await audit.record(admin.username, "words.update", "moderation.words", {"count": len(words)})
    return JSONResponse({"words": words, "max_words": MAX_WORDS, "max_word_chars": MAX_WORD_CHARS})


routes = [
    admin_route("/api/admin/moderation/cases", {"GET": (list_cases, False)}),
    admin_route("/api/admin/moderation/cases/{case_id:int}/action", {"POST": (act_on_case, True)}),
    admin_route(
        "/api/admin/moderation/words", {"GET": (get_words, False), "PUT": (put_words, True)}
    ),
]
