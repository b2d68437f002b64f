"""The Starlette application: routes, error handlers, and start-up/shut-down of DB and model."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute

from generation.engines import EngineHolder, start_engine
from server import logs
from server.accounts import profile
from server.accounts import routes as accounts
from server.accounts.tokens import TokenCodec
from server.admin import api as admin_api
from server.admin import auth as admin_auth
from server.admin import moderation as admin_moderation
from server.admin import site as admin_site
from server.admin.login_limit import LoginLimiter
from server.chat import history
from server.chat.live_replies import LiveReplies
from server.chat.replies import ReplyService
from server.chat.socket import chat_socket
from server.clock import utc_now
from server.config import Settings
from server.coordination import coordinator_for
from server.coordination.base import Coordinator
from server.errors import ApiError, handle_api_error, handle_http_exception, handle_unexpected
from server.logs import redact_url_logs
from server.ops import health, metrics
from server.ops import panel as ops
from server.ops.metrics import Metrics
from server.ops.panel import ProcessStats
from server.ops.presence import Presence
from server.payments import admin as pay_admin
from server.payments import routes as pay
from server.payments.store import Store
from server.replica import Replica
from server.safety import reports
from server.safety.checks import ContentChecker
from server.safety.wechat import WeChatChecker
from server.safety.words import WordList
from server.security.bodies import BodyGuard
from server.security.origins import OriginGuard, Origins
from server.security.sockets import SocketCaps
from server.security.tickets import TicketBook
from storage.database import connect, disconnect
from storage.migrate import apply_migrations, pending_migrations

logger = logging.getLogger(__name__)


class PendingMigrations(RuntimeError):
    """The production database is behind the code; the operator must migrate it."""


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; the database is opened and the model loaded in its lifespan."""
    settings = settings or Settings()
    redact_url_logs()
    origins = Origins(settings.allowed_origins)
    holder = EngineHolder(settings.engine)
    coordinator = coordinator_for(
        settings.redis_url,
        replica_id=settings.replica_id,
        lease_seconds=settings.lease_seconds,
        prefix=settings.redis_prefix,
    )
    logs.set_replica(coordinator.replica_id)
    live = LiveReplies(
        settings.resume_grace_seconds,
        publish=coordinator.publish if coordinator.shared else None,
    )
    app_metrics = Metrics()
    presence = Presence(app_metrics, live.tokens_so_far, coordinator)
    app_metrics.watch(presence.__len__, holder, coordinator)
    checker = content_checker(settings, coordinator, app_metrics)
    # The clock is read through app.state on every call, so that a test can move it.
    replies = ReplyService(
        holder,
        live,
        coordinator,
        checker,
        presence.reply_finished,
        settings,
        lambda: app.state.clock(),
    )
    replica = Replica(coordinator, live, presence, save_interval=settings.reply_save_interval)
    store = Store(settings, coordinator, lambda: app.state.clock(), count=app_metrics.payment_event)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await _prepare_database(settings)
        await connect(settings.db_url)
        await replica.start()
        await store.start()
        loading = asyncio.create_task(_load(settings, holder, app_metrics))
        sampling = asyncio.create_task(presence.sample_forever())
        try:
            yield
        finally:
            loading.cancel()
            sampling.cancel()
            await replies.live.shutdown()
            await store.close()
            if holder.engine is not None:
                holder.engine.close()
            await replica.close()
            await checker.close()
            await disconnect()

    app = Starlette(
        routes=[
            *health.routes,
            *accounts.routes,
            *profile.routes,
            *history.routes,
            *reports.routes,
            *pay.routes,
            *admin_auth.routes,
            *admin_api.routes,
            *admin_moderation.routes,
            *pay_admin.routes,
            *ops.routes,
            *metrics.routes,
            WebSocketRoute("/ws/chat", chat_socket),
            *admin_site.routes(),
        ],
        middleware=[
            Middleware(OriginGuard, origins=origins),
            Middleware(
                BodyGuard,
                limit=settings.max_body_bytes,
                uploads={"/api/me/avatar": profile.AVATAR_UPLOAD},
            ),
        ],
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = utc_now
    app.state.store = store
    app.state.tokens = TokenCodec(settings.secret_key, settings.token_ttl)
    app.state.engine = holder
    app.state.replies = replies
    app.state.checker = checker
    app.state.metrics = app_metrics
    app.state.presence = presence
    app.state.replica = replica
    app.state.process_stats = ProcessStats()
    app.state.origins = origins
    app.state.tickets = TicketBook(coordinator)
    app.state.socket_caps = SocketCaps(
        settings.max_sockets_per_user, settings.max_sockets_per_address
    )
    app.state.admin_logins = LoginLimiter(
        coordinator,
        attempts=settings.admin_login_attempts,
        window=settings.admin_login_window,
        secret_key=settings.secret_key,
    )
    return app


def content_checker(
    settings: Settings, coordinator: Coordinator, metrics: Metrics
) -> ContentChecker:
    """The word list, and WeChat's check when the app's id and secret are set."""
    wechat = None
    if settings.wechat_appid and settings.wechat_secret:
        wechat = WeChatChecker(
            coordinator,
            api_base=settings.wechat_api_base,
            appid=settings.wechat_appid,
            secret=settings.wechat_secret,
            timeout_s=settings.content_check_timeout,
        )
    return ContentChecker(
        WordList(), wechat, settings.content_check_failure, metrics.content_checked
    )


async def _prepare_database(settings: Settings) -> None:
    if settings.env == "development":
        applied = await apply_migrations(settings.db_url)
        if applied:
            logger.info("applied database migrations: %s", ", ".join(applied))
        return
    pending = await pending_migrations(settings.db_url)
    if pending:
        raise PendingMigrations(
            f"the database has {len(pending)} pending migrations ({', '.join(pending)}); "
            "run `wxgpt migrate` first"
        )


async def _load(settings: Settings, holder: EngineHolder, metrics: Metrics) -> None:
    config = settings.engine_config(events=metrics)
    try:
        engine = await asyncio.to_thread(start_engine, settings.engine, config)
    except Exception as exc:
        holder.error = str(exc)
        logger.error("model failed to load: %s", exc)
        return
    holder.engine = engine
    logger.info("ready: model %s serves /ws/chat (%s engine)", engine.info.model, engine.info.kind)
