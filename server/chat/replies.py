"""One chat turn end to end: check, charge, store the question, generate, store the reply."""

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generation.engines import EngineHolder
from generation.engines.base import PreparedReply, ReplyEngine
from generation.errors import EngineBusy, QueueFull
from generation.prompts import PromptTooLong, Turn
from generation.queue import Ticket
from generation.streaming import GenerationResult
from server import logs
from server.chat import protocol
from server.chat.live_replies import LiveReplies, LiveReply, Send, Watcher
from server.chat.protocol import ChatFrame, FrameError, ResumeFrame
from server.chat.remote_replies import RemoteReply, settled_reply
from server.chat.settings import ChatSettings, load_chat_settings
from server.clock import Clock
from server.config import Settings
from server.coordination.base import Coordinator
from storage import conversations, exchanges
from storage.errors import ConversationNotFound, DuplicateClientMessage, QuotaExhausted
from storage.exchanges import Exchange, Lease
from storage.models import Message, MessageStatus
from storage.quota import FreeDay

logger = logging.getLogger(__name__)

ResultHook = Callable[[GenerationResult], None]


@dataclass(frozen=True)
class _Job:
    """Everything one accepted reply needs after its question is stored."""

    user_id: int
    client_msg_id: str
    exchange: Exchange
    prepared: PreparedReply
    live: LiveReply
    on_result: ResultHook
    free: FreeDay


class ReplyService:
    """Runs chat turns detached from sockets; one reply at a time per user, on every replica."""

    def __init__(
        self,
        holder: EngineHolder,
        live: LiveReplies,
        coordinator: Coordinator,
        on_result: ResultHook,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._holder = holder
        self.live = live
        self._coordinator = coordinator
        self._settings = settings
        self._clock = clock
        # Told how each generated reply ended (for the ops panel and /metrics).
        self._on_result = on_result

    def lease(self) -> Lease:
        """This replica's claim on a reply, good for one lease period from now."""
        return Lease.starting_now(self._coordinator.replica_id, self._coordinator.lease_seconds)

    async def reply(self, user_id: int, frame: ChatFrame, watcher: Watcher) -> None:
        """Answer one chat frame, streaming to `watcher` until the reply ends or it leaves.

        Raises FrameError before anything is stored or charged. A client_msg_id already
        answered gets that reply (live or stored), never a second one.
        """
        existing = await exchanges.find_exchange(user_id, frame.client_msg_id)
        if existing is not None:
            await self._follow(user_id, existing[1].id, watcher, 0)
            return
        engine = self._engine()
        busy = _busy_key(user_id)
        if not await self._coordinator.claim(busy):
            raise FrameError(
                "busy", "one reply at a time: wait for the current reply, or resume it and stop it"
            )
        try:
            live = await self._accept(engine, user_id, frame)
        except BaseException:
            await self._coordinator.release(busy)
            raise
        if live is None:
            # The same client_msg_id raced in on another socket and won, or its
            # conversation has since been deleted.
            await self._coordinator.release(busy)
            found = await exchanges.find_exchange(user_id, frame.client_msg_id)
            if found is None:
                raise FrameError(
                    "not_found", "this message was answered in a conversation since deleted"
                )
            await self._follow(user_id, found[1].id, watcher, 0)
            return
        await live.attach(watcher, 0)
        await watcher.released()

    async def resume(self, user_id: int, frame: ResumeFrame, watcher: Watcher) -> None:
        """Stream reply `message_id` from character `offset` on, live or as stored."""
        await self._follow(user_id, frame.message_id, watcher, frame.offset)

    async def free_day(self) -> FreeDay:
        """Today's free replies, as the next charge will see them."""
        return (await load_chat_settings()).free_day(self._settings, self._clock())

    async def _follow(self, user_id: int, message_id: int, watcher: Watcher, offset: int) -> None:
        live = self.live.get(message_id)
        if live is not None and live.user_id == user_id:
            await live.attach(watcher, offset)
            await watcher.released()
            return
        # Looked up after the live registry: a reply leaves it only once stored.
        reply = await exchanges.find_reply(user_id, message_id)
        if reply is None:
            raise FrameError("not_found", f"reply {message_id} not found")
        owner = reply.replica_id
        if (
            reply.status == MessageStatus.GENERATING
            and owner
            and owner != self._coordinator.replica_id
        ):
            if await self._coordinator.replica_alive(owner):
                seen = await RemoteReply(self._coordinator, message_id, owner).follow(
                    watcher, offset
                )
                if watcher.left or watcher.is_released:
                    return
                # The owner went away mid-reply: send what a survivor stores of it.
                offset = max(offset, len(seen))
            reply = await settled_reply(user_id, message_id, self._coordinator.lease_seconds * 3)
        await _replay(user_id, reply, watcher.send, offset, await self.free_day())

    def _engine(self) -> ReplyEngine:
        engine = self._holder.engine
        if self._holder.error is not None:
            raise FrameError("internal", "the model failed to load; the operator must fix it")
        if engine is None:
            raise FrameError("busy", "the model is still loading; try again in a moment")
        health = engine.health()
        if not health.ready:
            raise FrameError(
                "internal", f"replies cannot be generated now: {health.reason}; try again later"
            )
        return engine

    async def _accept(
        self, engine: ReplyEngine, user_id: int, frame: ChatFrame
    ) -> LiveReply | None:
        """Charge, store the question and start generating; None if a twin was accepted."""
        chat = await load_chat_settings()
        free = chat.free_day(self._settings, self._clock())
        prepared = await _prepare(engine, user_id, frame, chat)
        try:
            ticket = engine.reserve()
        except QueueFull as exc:
            raise FrameError("busy", str(exc)) from None
        try:
            exchange = await _begin_exchange(user_id, frame, self.lease(), free)
        except BaseException:
            ticket.release()
            raise
        if exchange is None:
            ticket.release()
            return None
        live = self.live.new(user_id, exchange.conversation_id, exchange.reply_id)
        job = _Job(user_id, frame.client_msg_id, exchange, prepared, live, self._on_result, free)
        self.live.start(live, self._generate(engine, ticket, job))
        return live

    async def _generate(self, engine: ReplyEngine, ticket: Ticket, job: _Job) -> None:
        try:
            async with ticket:
                await _run(engine, ticket, job)
        except Exception:
            logger.exception("reply %d could not be stored", job.exchange.reply_id)
            await job.live.finish(
                protocol.error("internal", "the reply could not be stored; see the server log")
            )
        finally:
            await self._coordinator.release(_busy_key(job.user_id))


def _busy_key(user_id: int) -> str:
    return f"busy:{user_id}"


async def _begin_exchange(
    user_id: int, frame: ChatFrame, lease: Lease, free: FreeDay
) -> Exchange | None:
    """Charge and store the question; None if the same client_msg_id was accepted already."""
    try:
        return await exchanges.begin_exchange(
            user_id, frame.conversation_id, frame.content, frame.client_msg_id, lease, free
        )
    except QuotaExhausted:
        raise FrameError(
            "quota_exhausted", "no replies left today; buy more in the store or come back tomorrow"
        ) from None
    except ConversationNotFound:
        raise _conversation_not_found(frame.conversation_id) from None
    except DuplicateClientMessage:
        return None


async def _run(engine: ReplyEngine, ticket: Ticket, job: _Job) -> None:
    """Wait for a slot, stream the reply, store it however it ended, then send `done`."""
    exchange, live = job.exchange, job.live
    logs.reply_id.set(exchange.reply_id)
    prompt_tokens = job.prepared.prompt_tokens
    busy: EngineBusy | None = None
    try:
        result = GenerationResult("", "cancelled", prompt_tokens, 0, None, 0.0)
        if await _wait_for_slot(ticket, live):
            await live.begin()
            result = await engine.generate(job.prepared, live.token, live.append)
    except EngineBusy as exc:
        # Stored as failed (nothing was generated, and it stays out of chat memory) and
        # refunded, like any reply the server could not give; the user is told to retry.
        logger.warning("reply %d turned away: %s", exchange.reply_id, exc)
        busy = exc
        result = GenerationResult("", "error", prompt_tokens, 0, None, 0.0, error="busy")
    except Exception:
        logger.exception("reply %d failed", exchange.reply_id)
        result = GenerationResult("", "error", prompt_tokens, 0, None, 0.0, error="internal")
    if live.reason == "shutdown" and result.finish_reason == "cancelled":
        result = dataclasses.replace(result, finish_reason="interrupted")
    status = _status_of(result, live)
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
    if live.token.steps_after_cancel is not None:
        logger.info(
            "reply %d: model stopped %d steps after the stop flag",
            exchange.reply_id,
            live.token.steps_after_cancel,
        )
    job.on_result(result)
    quota_left, free_left = exchange.quota_left, exchange.free_left
    if result.finish_reason in ("error", "interrupted"):
        # The fault is the server's, so the unit goes back.
        note = "inference engine busy" if busy else _REFUND_NOTES[status]
        if await exchanges.refund(job.user_id, job.client_msg_id, note) is not None:
            quota_left, free_left = await exchanges.get_balance(job.user_id, job.free)
    if status == MessageStatus.FAILED:
        await live.finish(_failure_frame(busy, quota_left))
        return
    await live.finish(
        protocol.done(
            exchange.reply_id,
            result.finish_reason,
            result.prompt_tokens,
            result.completion_tokens,
            quota_left,
            free_left,
        )
    )


_REFUND_NOTES = {
    MessageStatus.FAILED: "generation failed",
    MessageStatus.INTERRUPTED: "the server stopped before the reply ended",
}


async def _prepare(
    engine: ReplyEngine, user_id: int, frame: ChatFrame, chat: ChatSettings
) -> PreparedReply:
    """The conversation's stored turns and the new message, fitted by the engine."""
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
    try:
        return await engine.prepare(turns, chat.sampling())
    except PromptTooLong as exc:
        raise FrameError("too_long", str(exc)) from None


async def _wait_for_slot(ticket: Ticket, live: LiveReply) -> bool:
    """Wait in line (sending `queued` frames); False if the reply was cancelled meanwhile."""
    if ticket.holds_slot:
        return True
    waiting = asyncio.ensure_future(ticket.wait(live.queued))
    cancelled = asyncio.ensure_future(live.wait_cancelled())
    await asyncio.wait({waiting, cancelled}, return_when=asyncio.FIRST_COMPLETED)
    for task in (waiting, cancelled):
        task.cancel()
    return ticket.holds_slot and live.reason is None


async def _replay(user_id: int, reply: Message, send: Send, offset: int, free: FreeDay) -> None:
    """Send a stored reply from character `offset` on, charging nothing.

    A client may hold more of an interrupted reply than was stored before its server
    stopped; it gets the end of the reply, saying it was interrupted.
    """
    if reply.status == MessageStatus.GENERATING:
        raise FrameError("busy", f"reply {reply.id} is being set up; try again in a moment")
    if offset > len(reply.content) and reply.status != MessageStatus.INTERRUPTED:
        raise FrameError(
            "bad_request",
            f"offset {offset} is beyond the {len(reply.content)} characters of reply {reply.id}",
        )
    await send(protocol.start(reply.conversation_id, reply.id))
    if offset < len(reply.content):
        await send(protocol.delta(reply.content[offset:]))
    await send(
        protocol.done(
            reply.id,
            reply.finish_reason or "stop",
            reply.prompt_tokens,
            reply.completion_tokens,
            *await exchanges.get_balance(user_id, free),
        )
    )


def _failure_frame(busy: EngineBusy | None, quota: int | None) -> dict[str, Any]:
    refunded = f"your quota was refunded (now {quota})"
    if busy is None:
        return protocol.error("internal", f"the reply could not be generated; {refunded}")
    wait = f"in {busy.retry_after_s} s" if busy.retry_after_s is not None else "in a moment"
    return protocol.error("busy", f"the model is busy; {refunded}; try again {wait}")


def _status_of(result: GenerationResult, live: LiveReply) -> MessageStatus:
    if result.finish_reason == "error":
        return MessageStatus.FAILED
    if result.finish_reason == "interrupted":
        return MessageStatus.INTERRUPTED
    if result.finish_reason != "cancelled":
        return MessageStatus.COMPLETE
    return MessageStatus.STOPPED if live.reason == "stop" else MessageStatus.INTERRUPTED


def _conversation_not_found(conversation_id: int | None) -> FrameError:
    return FrameError("not_found", f"conversation {conversation_id} not found")


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)
