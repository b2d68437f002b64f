"""Users' reports of replies (举报): each files the reply for the moderation page, once."""

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.accounts.tokens import authenticate
from server.errors import ApiError
from server.validation import Id, StrictModel, read_body
from storage import exchanges, moderation
from storage.models import CaseKind, CaseState, ModerationCase


class ReportBody(StrictModel):
    message_id: Id
    reason: str = Field("", max_length=200)


async def report(request: Request) -> Response:
    """File one of the user's replies for review; reporting it again changes nothing."""
    user = await authenticate(request)
    body = await read_body(request, ReportBody)
    reply = await exchanges.find_reply(user.id, body.message_id)
    if reply is None:
        raise ApiError(404, "not_found", f"reply {body.message_id} not found")
    existing = await ModerationCase.get_or_none(
        kind=CaseKind.REPORT, user_id=user.id, message_id=reply.id, state=CaseState.OPEN
    )
    if existing is not None:
        return JSONResponse({"report_id": existing.id}, status_code=200)
    case = await moderation.file_case(
        CaseKind.REPORT,
        user.id,
        reply.content,
        verdict="reported",
        note=body.reason,
        message_id=reply.id,
        conversation_id=reply.conversation_id,
    )
    return JSONResponse({"report_id": case.id}, status_code=201)


routes = [Route("/api/reports", report, methods=["POST"])]
