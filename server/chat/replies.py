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
from server.safety.checks import PASS, CheckUnavailable, ContentChecker, Verdict
from server.safety.release import CheckedRelease
from server.safety.wechat import Scene
from storage import conversations, exchanges, moderation
from storage.errors import ConversationNotFound, DuplicateClientMessage, QuotaExhausted
from storage.exchanges import Exchange, Lease
from storage.models import CaseKind, Message, MessageStatus
from storage.quota import FreeDay

logger = logging.getLogger(__name__)

ResultHook = Callable[[GenerationResult], None]


@dataclass(frozen=True)
class _Job:
    """Everything one accepted reply needs after its question is stored."""

    user_id: int
    openid: str
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
        checker: ContentChecker,
        on_result: ResultHook,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._holder = holder
        self.live = live
        self._coordinator = coordinator
        self._checker = checker
        # Replies are released in checked pieces of at most this many characters.
        self._piece_chars = settings.output_check_chars
        self._settings = settings
        self._clock = clock
        # Told how each generated reply ended (for the ops panel and /metrics).
        self._on_result = on_result

    def lease(self) -> Lease:
        """This replica's claim on a reply, good for one lease period from now."""
        return Lease.starting_now(self._coordinator.replica_id, self._coordinator.lease_seconds)

    async def reply(self, user_id: int, openid: str, frame: ChatFrame, watcher: Watcher) -> None:
        """Answer one chat frame, streaming to `watcher` until the reply ends or it leaves.

        Raises FrameError before anything is stored or charged, `content_blocked` for a
        message the content checks refuse. A client_msg_id already answered gets that reply
        (live or stored), never a second one.
        """
        existing = await exchanges.find_exchange(user_id, frame.client_msg_id)
        if existing is not None:
            await self._follow(user_id, existing[1].id, watcher, 0)
            return
        engine = self._engine()
        verdict = await self._check_question(user_id, openid, frame)
        busy = _busy_key(user_id)
        if not await self._coordinator.claim(busy):
            raise FrameError(
                "busy", "one reply at a time: wait for the current reply, or resume it and stop it"
            )
        try:
            live = await self._accept(engine, user_id, openid, frame, verdict)
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
            # Followed even if the owner looks gone: the follower tells a dead owner from a
            # late heartbeat, and a dead one's stream still holds what it wrote.
            seen = await RemoteReply(self._coordinator, message_id, owner).follow(watcher, offset)
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

    async def _check_question(self, user_id: int, openid: str, frame: ChatFrame) -> Verdict:
        """The checks' verdict on the message; a refused one is filed for review and raised."""
        try:
            verdict = await self._checker.check(frame.content, openid, Scene.COMMENT)
        except CheckUnavailable:
            raise FrameError(
                "busy", "the content check is not answering; nothing was charged; try again soon"
            ) from None
        if verdict.blocked:
            await _file(CaseKind.INPUT, user_id, frame.content, verdict, frame.conversation_id)
            raise FrameError(
                "content_blocked",
                "this message was not sent: it breaks the content rules; nothing was charged",
            )
        return verdict

    async def _accept(
        self,
        engine: ReplyEngine,
        user_id: int,
        openid: str,
        frame: ChatFrame,
        verdict: Verdict = PASS,
    ) -> LiveReply | None:
        """Charge, store the question and start generating; None if a twin was accepted.

        A question let through for review is filed with its stored message.
        """
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
        if verdict.for_review:
            await _file(
                CaseKind.INPUT,
                user_id,
                frame.content,
                verdict,
                exchange.conversation_id,
                exchange.user_message_id,
            )
        live = self.live.new(user_id, exchange.conversation_id, exchange.reply_id)
        job = _Job(
            user_id, openid, frame.client_msg_id, exchange, prepared, live, self._on_result, free
        )
        self.live.start(live, self._generate(engine, ticket, job))
        return live

    async def _generate(self, engine: ReplyEngine, ticket: Ticket, job: _Job) -> None:
        try:
            async with ticket:
                release = CheckedRelease(
                    self._checker,
                    job.openid,
                    max_chars=self._piece_chars,
                    release=job.live.append,
                    stop=lambda: job.live.cancel("blocked"),
                )
                await _run(engine, ticket, job, release)
        except Exception:
            logger.exception("reply %d could not be stored", job.exchange.reply_id)
            await job.live.finish(
                protocol.error("internal", "the reply could not be stored; see the server log")
            )
        finally:
            await self._coordinator.release(_busy_key(job.user_id))


async def _file(
    kind: CaseKind,
    user_id: int,
    content: str,
    verdict: Verdict,
    conversation_id: int | None,
    message_id: int | None = None,
) -> None:
    await moderation.file_case(
        kind,
        user_id,
        content,
        verdict=verdict.verdict,
        checker=verdict.checker,
        label=verdict.label,
        conversation_id=conversation_id,
        message_id=message_id,
    )
    logger.info(
        "%s of user %d filed for review: %s by %s (%s)",
        kind.value,
        user_id,
        verdict.verdict,
        verdict.checker,
        verdict.label,
    )


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


async def _run(engine: ReplyEngine, ticket: Ticket, job: _Job, release: CheckedRelease) -> None:
    """Wait for a slot, stream the reply through its checks, store it however it ended, then
    send `done` (or the error that ended it)."""
    exchange, live = job.exchange, job.live
    logs.reply_id.set(exchange.reply_id)
    prompt_tokens = job.prepared.prompt_tokens
    busy: EngineBusy | None = None
    try:
        result = GenerationResult("", "cancelled", prompt_tokens, 0, None, 0.0)
        if await _wait_for_slot(ticket, live):
            await live.begin()
            result = await engine.generate(job.prepared, live.token, release.feed)
    except EngineBusy as exc:
        # Stored as failed (nothing was generated, and it stays out of chat memory) and
        # refunded, like any reply the server could not give; the user is told to retry.
        logger.warning("reply %d turned away: %s", exchange.reply_id, exc)
        busy = exc
        result = GenerationResult("", "error", prompt_tokens, 0, None, 0.0, error="busy")
    except Exception:
        logger.exception("reply %d failed", exchange.reply_id)
        result = GenerationResult("", "error", prompt_tokens, 0, None, 0.0, error="internal")
    await release.close()
    if live.reason == "shutdown" and result.finish_reason == "cancelled":
        result = dataclasses.replace(result, finish_reason="interrupted")
    if release.stopped:
        # The user saw the pieces released before the one that stopped it, and no more.
        result = dataclasses.replace(result, text=live.text)
    status = _status_of(result, live, release)
    await exchanges.finish_reply(
        exchange.reply_id,
        content=result.text,
        status=status,
        finish_reason="blocked" if status == MessageStatus.BLOCKED else result.finish_reason,
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
    await _file_reply_cases(job, release)
    quota_left, free_left = exchange.quota_left, exchange.free_left
    if result.finish_reason in ("error", "interrupted") or release.stopped:
        # The fault is the server's (or the model's), so the unit goes back.
        note = "inference engine busy" if busy else _REFUND_NOTES[status]
        if release.failure is not None:
            note = "the reply could not be checked"
        if await exchanges.refund(job.user_id, job.client_msg_id, note) is not None:
            quota_left, free_left = await exchanges.get_balance(job.user_id, job.free)
    if status == MessageStatus.BLOCKED:
        await live.finish(_blocked_frame(quota_left))
        return
    if status == MessageStatus.FAILED:
        unchecked = release.failure is not None
        await live.finish(_failure_frame(busy, quota_left, unchecked=unchecked))
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


async def _file_reply_cases(job: _Job, release: CheckedRelease) -> None:
    """File the reply's blocked piece, and pieces let through for review, for moderation."""
    pieces = list(release.for_review)
    if release.blocked is not None:
        pieces.append((release.blocked_piece, release.blocked))
    for piece, verdict in pieces:
        await _file(
            CaseKind.OUTPUT,
            job.user_id,
            piece,
            verdict,
            job.exchange.conversation_id,
            job.exchange.reply_id,
        )


_REFUND_NOTES = {
    MessageStatus.BLOCKED: "the reply was blocked by the content checks",
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
    if reply.status == MessageStatus.BLOCKED:
        raise FrameError("content_blocked", _BLOCKED)
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


_BLOCKED = "the reply was stopped by the content checks and removed"


def _blocked_frame(quota: int | None) -> dict[str, Any]:
    return protocol.error("content_blocked", f"{_BLOCKED}; your quota was refunded (now {quota})")


def _failure_frame(
    busy: EngineBusy | None, quota: int | None, *, unchecked: bool = False
) -> dict[str, Any]:
    refunded = f"your quota was refunded (now {quota})"
    if unchecked:
        return protocol.error(
            "busy", f"the content check is not answering, so the reply stopped; {refunded}"
        )
    if busy is None:
        return protocol.error("internal", f"the reply could not be generated; {refunded}")
    wait = f"in {busy.retry_after_s} s" if busy.retry_after_s is not None else "in a moment"
    return protocol.error("busy", f"the model is busy; {refunded}; try again {wait}")


def _status_of(result: GenerationResult, live: LiveReply, release: CheckedRelease) -> MessageStatus:
    if release.blocked is not None:
        return MessageStatus.BLOCKED
    if result.finish_reason == "error" or release.failure is not None:
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
