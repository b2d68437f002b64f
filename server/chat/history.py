"""The mini-program's history endpoints: the user's own conversations and their messages."""

from collections.abc import Awaitable, Callable

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.accounts.tokens import authenticate
from server.errors import ApiError
from server.validation import ID_MAX, StrictModel, path_id, query_int, read_body
from server.views import conversation_view, message_view
from storage import conversations, exchanges
from storage.errors import ConversationNotFound
from storage.models import User

MAX_PAGE = 100


class RenameBody(StrictModel):
    title: str = Field(min_length=1, max_length=100)


async def list_conversations(request: Request) -> Response:
    user = await authenticate(request)
    offset = query_int(request, "offset", 0, 0, 10**9) or 0
    limit = query_int(request, "limit", 20, 1, MAX_PAGE) or 20
    items, total = await conversations.list_conversations(user.id, offset=offset, limit=limit)
    next_offset = offset + len(items) if offset + len(items) < total else None
    return JSONResponse(
        {"items": [conversation_view(c) for c in items], "total": total, "next_offset": next_offset}
    )


async def list_messages(request: Request) -> Response:
    user = await authenticate(request)
    conversation_id = path_id(request, "conversation_id")
    before = query_int(request, "before", None, 1, ID_MAX)
    limit = query_int(request, "limit", 50, 1, MAX_PAGE) or 50
    try:
        items, has_more = await conversations.list_messages(
            user.id, conversation_id, before_id=before, limit=limit
        )
    except ConversationNotFound:
        raise _not_found(conversation_id) from None
    return JSONResponse({"items": [message_view(m) for m in items], "has_more": has_more})


async def get_conversation(request: Request, user: User, conversation_id: int) -> Response:
    found = await conversations.get_conversation(user.id, conversation_id)
    return JSONResponse(conversation_view(found))


async def rename_conversation(request: Request, user: User, conversation_id: int) -> Response:
    body = await read_body(request, RenameBody)
    renamed = await conversations.rename_conversation(user.id, conversation_id, body.title.strip())
    return JSONResponse(conversation_view(renamed))


async def delete_conversation(request: Request, user: User, conversation_id: int) -> Response:
    if await exchanges.generating_in(conversation_id):
        raise ApiError(409, "busy", "a reply is being written in this conversation; stop it first")
    await conversations.delete_conversation(user.id, conversation_id)
    return Response(status_code=204)


ConversationHandler = Callable[[Request, User, int], Awaitable[Response]]
# HEAD is answered as GET (Starlette routes HEAD wherever GET is allowed).
CONVERSATION_METHODS: dict[str, ConversationHandler] = {
    "GET": get_conversation,
    "HEAD": get_conversation,
    "PATCH": rename_conversation,
    "DELETE": delete_conversation,
}


async def conversation(request: Request) -> Response:
    user = await authenticate(request)
    conversation_id = path_id(request, "conversation_id")
    try:
        return await CONVERSATION_METHODS[request.method](request, user, conversation_id)
    except ConversationNotFound:
        raise _not_found(conversation_id) from None


def _not_found(conversation_id: int) -> ApiError:
    return ApiError(404, "not_found", f"conversation {conversation_id} not found")


routes = [
    Route("/api/conversations", list_conversations, methods=["GET"]),
    Route(
        "/api/conversations/{conversation_id:int}", conversation, methods=["GET", "PATCH", "DELETE"]
    ),
    Route("/api/conversations/{conversation_id:int}/messages", list_messages, methods=["GET"]),
]
