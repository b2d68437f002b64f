"""One chat turn end to end: check, charge, store the question, generate, store the reply."""

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from generation.engines import ReplyEngine
from generation.errors import QueueFull
from generation.prompts import Prompt, PromptTooLong, Turn, fit_prompt
from generation.queue import Ticket
from generation.stopping import CancelToken
from generation.streaming import GenerationResult
from server import protocol
from server.chat_settings import ChatSettings, load_chat_settings
from server.protocol import ChatFrame, FrameError
from storage import conversations, exchanges
from storage.errors import ConversationNotFound, DuplicateClientMessage, QuotaExhausted
from storage.exchanges import Exchange
from storage.models import Message, MessageStatus

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
CancelReason = Literal["stop", "disconnect"]


@dataclass
class ReplyControl:
    """How the socket reaches a running reply: stop it, or tell it the client left."""

    token: CancelToken = field(default_factory=CancelToken)
    reason: CancelReason | None = None
    _cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    def cancel(self, reason: CancelReason) -> None:
        """Stop the reply (the model stops within one decoding step)."""
        if self.reason is None:
            self.reason = reason
        self.token.cancel()
        self._cancelled.set()

    async def wait_cancelled(self) -> None:
        """Return once cancel() was called."""
        await self._cancelled.wait()


class ModelHolder:
    """The engine once the model has loaded, or why it has not."""

    def __init__(self) -> None:
        self.engine: ReplyEngine | None = None
        self.error: str | None = None


class ReplyService:
    """Runs chat turns; enforces one reply at a time per user."""

    def __init__(self, holder: ModelHolder) -> None:
        self._holder = holder
        self._busy_users: set[int] = set()
        self._busy_conversations: Counter[int] = Counter()

    def generating_in(self, conversation_id: int) -> bool:
        """Whether a reply is being written in this conversation now."""
        return self._busy_conversations[conversation_id] > 0

    async def reply(
        self, user_id: int, frame: ChatFrame, send: Send, control: ReplyControl
    ) -> None:
        """Answer one chat frame; raises FrameError before anything is stored or charged."""
        engine = self._holder.engine
        if self._holder.error is not None:
            raise FrameError("internal", "the model failed to load; the operator must fix it")
        if engine is None:
            raise FrameError("busy", "the model is still loading; try again in a moment")
        if user_id in self._busy_users:
            raise FrameError("busy", "one reply at a time: wait for the current reply or stop it")
        self._busy_users.add(user_id)
        try:
            await self._reply(engine, user_id, frame, send, control)
        finally:
            self._busy_users.discard(user_id)

    async def _reply(
        self, engine: ReplyEngine, user_id: int, frame: ChatFrame, send: Send, control: ReplyControl
    ) -> None:
        existing = await exchanges.find_exchange(user_id, frame.client_msg_id)
        if existing is not None:
            await _replay(user_id, existing[1], send)
            return
        chat_settings = _fit_to_model(await load_chat_settings(), engine)
        prompt = await _build_prompt(engine, user_id, frame, chat_settings)
        try:
            ticket = engine.reserve()
        except QueueFull as exc:
            raise FrameError("busy", str(exc)) from None
        async with ticket:
            try:
                exchange = await exchanges.begin_exchange(
                    user_id, frame.conversation_id, frame.content, frame.client_msg_id
                )
            except QuotaExhausted:
                raise FrameError(
                    "quota_exhausted", "no quota left; ask the operator for more"
                ) from None
            except ConversationNotFound:
                raise _conversation_not_found(frame.conversation_id) from None
            except DuplicateClientMessage:
                # The same client_msg_id raced in on another socket and won, or its
                # conversation has since been deleted.
                found = await exchanges.find_exchange(user_id, frame.client_msg_id)
                if found is None:
                    raise FrameError(
                        "not_found", "this message was answered in a conversation since deleted"
                    ) from None
                await _replay(user_id, found[1], send)
                return
            job = _Job(user_id, frame.client_msg_id, exchange, prompt, chat_settings, send, control)
            self._busy_conversations[exchange.conversation_id] += 1
            try:
                await _run(engine, ticket, job)
            finally:
                self._busy_conversations[exchange.conversation_id] -= 1


@dataclass(frozen=True)
class _Job:
    """Everything one accepted reply needs after its question is stored."""

    user_id: int
    client_msg_id: str
    exchange: Exchange
    prompt: Prompt
    settings: ChatSettings
    send: Send
    control: ReplyControl


async def _run(engine: ReplyEngine, ticket: Ticket, job: _Job) -> None:
    """Wait for a slot, stream the reply, store it however it ended, then send `done`."""
    exchange, send = job.exchange, job.send
    try:
        result = GenerationResult("", "cancelled", len(job.prompt.ids), 0, None, 0.0)
        if await _wait_for_slot(ticket, send, job.control):
            await send(protocol.start(exchange.conversation_id, exchange.reply_id))
            result = await engine.generate(
                job.prompt.ids,
                job.settings.sampling(),
                job.control.token,
                lambda text: send(protocol.delta(text)),
            )
    except Exception:
        logger.exception("reply %d failed", exchange.reply_id)
        result = GenerationResult("", "error", len(job.prompt.ids), 0, None, 0.0, error="internal")
    status = _status_of(result, job.control)
    await exchanges.finish_reply(
        exchange.reply_id,
        content=result.text,
        status=status,
        finish_reason=result.finish_reason,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        first_token_ms=_ms(result.first_token_s),
        duration_ms=_ms(result.duration_s),
    )
    logger.info(
        "reply %d %s: %d prompt + %d completion tokens, first token %s ms, %s ms",
        exchange.reply_id,
        status.value,
        result.prompt_tokens,
        result.completion_tokens,
        _ms(result.first_token_s),
        _ms(result.duration_s),
    )
    if job.control.token.steps_after_cancel is not None:
        logger.info(
            "reply %d: model stopped %d steps after the stop flag",
            exchange.reply_id,
            job.control.token.steps_after_cancel,
        )
    if status == MessageStatus.FAILED:
        # The fault is the server's, so the unit goes back.
        quota = await exchanges.refund(job.user_id, job.client_msg_id, "generation failed")
        await send(
            protocol.error(
                "internal",
                f"the reply could not be generated; your quota was refunded (now {quota})",
            )
        )
        return
    await send(
        protocol.done(
            exchange.reply_id,
            result.finish_reason,
            result.prompt_tokens,
            result.completion_tokens,
            exchange.quota_left,
        )
    )


def _fit_to_model(chat: ChatSettings, engine: ReplyEngine) -> ChatSettings:
    """Cap max_new_tokens at half the context, so a setting too big for this model still
    leaves room for the question instead of failing every reply."""
    cap = engine.loaded.context_size // 2
    if chat.max_new_tokens <= cap:
        return chat
    logger.warning(
        "max_new_tokens %d does not fit the model's %d-token context; using %d",
        chat.max_new_tokens,
        engine.loaded.context_size,
        cap,
    )
    return chat.model_copy(update={"max_new_tokens": cap})


async def _build_prompt(
    engine: ReplyEngine, user_id: int, frame: ChatFrame, chat: ChatSettings
) -> Prompt:
    history: list[tuple[str, str]] = []
    if frame.conversation_id is not None:
        try:
            await conversations.get_conversation(user_id, frame.conversation_id)
        except ConversationNotFound:
            raise _conversation_not_found(frame.conversation_id) from None
        history = await conversations.load_history(
            frame.conversation_id, max_turns=chat.history_turns
        )
    turns = [Turn(role, content) for role, content in history]  # type: ignore[arg-type]
    turns.append(Turn("user", frame.content))
    loaded = engine.loaded
    try:
        return fit_prompt(
            loaded.prompt_format,
            turns,
            context_size=loaded.context_size,
            max_new_tokens=chat.max_new_tokens,
        )
    except PromptTooLong as exc:
        raise FrameError("too_long", str(exc)) from None


async def _wait_for_slot(ticket: Ticket, send: Send, control: ReplyControl) -> bool:
    """Wait in line (sending `queued` frames); False if the reply was cancelled meanwhile."""
    if ticket.holds_slot:
        return True
    waiting = asyncio.ensure_future(ticket.wait(lambda position: send(protocol.queued(position))))
    cancelled = asyncio.ensure_future(control.wait_cancelled())
    await asyncio.wait({waiting, cancelled}, return_when=asyncio.FIRST_COMPLETED)
    for task in (waiting, cancelled):
        task.cancel()
    return ticket.holds_slot and control.reason is None


async def _replay(user_id: int, reply: Message, send: Send) -> None:
    """Answer a repeated client_msg_id with the reply already stored, charging nothing."""
    if reply.status == MessageStatus.GENERATING:
        raise FrameError("busy", "this message is already being answered")
    await send(protocol.start(reply.conversation_id, reply.id))
    if reply.content:
        await send(protocol.delta(reply.content))
    await send(
        protocol.done(
            reply.id,
            reply.finish_reason or "stop",
            reply.prompt_tokens,
            reply.completion_tokens,
            await exchanges.get_quota(user_id),
        )
    )


def _status_of(result: GenerationResult, control: ReplyControl) -> MessageStatus:
    if result.finish_reason == "error":
        return MessageStatus.FAILED
    if result.finish_reason != "cancelled":
        return MessageStatus.COMPLETE
    return MessageStatus.STOPPED if control.reason == "stop" else MessageStatus.INTERRUPTED


def _conversation_not_found(conversation_id: int | None) -> FrameError:
    return FrameError("not_found", f"conversation {conversation_id} not found")


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)
