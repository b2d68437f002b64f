"""Prometheus metrics at /metrics: sockets, queue, reply outcomes, latency, tokens."""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from generation.engines import EngineHolder
from generation.queue import GenerationQueue
from generation.streaming import GenerationResult
from server.coordination.base import Coordinator

# Seconds: a tiny model on a GPU answers in milliseconds, a big one on a CPU in seconds.
FIRST_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """wxgpt's metrics in a registry of the app's own (tests run several apps in a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.open_sockets = Gauge(
            "wxgpt_chat_sockets_open", "Open /ws/chat sockets.", registry=registry
        )
        self.queue_depth = Gauge(
            "wxgpt_queue_depth", "Replies waiting for a generation slot.", registry=registry
        )
        self.running = Gauge(
            "wxgpt_generations_running", "Replies being generated now.", registry=registry
        )
        self.replies = Counter(
            "wxgpt_replies",
            "Replies generated, by how they ended (stop, length, cancelled, error).",
            ["finish_reason"],
            registry=registry,
        )
        self.errors = Counter(
            "wxgpt_chat_errors",
            "Error frames sent on /ws/chat, by code.",
            ["code"],
            registry=registry,
        )
        self.first_token = Histogram(
            "wxgpt_time_to_first_token_seconds",
            "From the start of generation to the first token, per reply.",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.per_token = Histogram(
            "wxgpt_time_per_output_token_seconds",
            "Mean time between a reply's tokens after the first, one observation per reply.",
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.generated_tokens = Counter(
            "wxgpt_generated_tokens", "Tokens generated in replies.", registry=registry
        )
        self.prompt_tokens = Counter(
            "wxgpt_prompt_tokens", "Prompt tokens read for replies.", registry=registry
        )
        self.coordination_up = Gauge(
            "wxgpt_coordination_up",
            "1 while the state shared with other replicas (Redis) is reachable, else 0.",
            registry=registry,
        )
        self.content_checks = Counter(
            "wxgpt_content_checks",
            "Texts checked (questions, reply pieces, nicknames), by checker (words, wechat) "
            "and verdict (pass, review, risky, unavailable).",
            ["checker", "verdict"],
            registry=registry,
        )
        self.engine_ready = Gauge(
            "wxgpt_engine_ready", "1 while the engine can take replies, else 0.", registry=registry
        )
        self.engine_errors = Counter(
            "wxgpt_engine_errors",
            "Engine failures by kind: failed requests to the inference server (unreachable, "
            "timeout, disconnected, server_error, rejected, bad_stream, busy); the batched "
            "engine's failed forward passes (prefill, decode_step), failed samples (sampling) "
            "and its own failure (engine_failed).",
            ["kind"],
            registry=registry,
        )
        self.payments = Counter(
            "wxgpt_payments",
            "Store events: orders credited (from a notice or reconciliation), notices refused, "
            "reconciliation failures, refunds.",
            ["event"],
            registry=registry,
        )
        self.engine_first_token = Histogram(
            "wxgpt_engine_first_token_seconds",
            "From sending a request to the inference server to its first text.",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.engine_duration = Histogram(
            "wxgpt_engine_request_duration_seconds",
            "Requests to the inference server that ran to their end, start to end.",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    def watch(
        self, open_sockets: Callable[[], int], holder: EngineHolder, coordinator: Coordinator
    ) -> None:
        """Read the gauges from the presence registry, the engine's queue and the coordinator
        at scrape time."""
        self.open_sockets.set_function(open_sockets)
        self.queue_depth.set_function(lambda: _queue_value(holder, lambda q: q.waiting))
        self.running.set_function(lambda: _queue_value(holder, lambda q: q.running))
        self.coordination_up.set_function(lambda: float(coordinator.health().up))
        self.engine_ready.set_function(lambda: holder.health().ready)

    def observe_reply(self, result: GenerationResult) -> None:
        """Count one generated reply: its outcome, tokens and timings."""
        self.replies.labels(result.finish_reason).inc()
        self.generated_tokens.inc(result.completion_tokens)
        self.prompt_tokens.inc(result.prompt_tokens)
        if result.first_token_s is None:
            return
        self.first_token.observe(result.first_token_s)
        if result.completion_tokens > 1:
            self.per_token.observe(
                (result.duration_s - result.first_token_s) / (result.completion_tokens - 1)
            )

    def content_checked(self, checker: str, verdict: str) -> None:
        """One verdict of the content checks; `unavailable`: WeChat gave none."""
        self.content_checks.labels(checker=checker, verdict=verdict).inc()

    def count_error(self, code: str) -> None:
        """Count one error frame sent to a chat client."""
        self.errors.labels(code).inc()

    def payment_event(self, event: str) -> None:
        """Count one store event: credited, notice_refused, reconcile_failed, refunded."""
        self.payments.labels(event).inc()

    def engine_error(self, kind: str) -> None:
        """Count one engine failure (EngineEvents)."""
        self.engine_errors.labels(kind).inc()

    def engine_request(self, first_token_s: float | None, duration_s: float | None) -> None:
        """Time one request to the inference server (EngineEvents)."""
        if first_token_s is not None:
            self.engine_first_token.observe(first_token_s)
        if duration_s is not None:
            self.engine_duration.observe(duration_s)


def _queue_value(holder: EngineHolder, read: Callable[[GenerationQueue], int]) -> int:
    return 0 if holder.engine is None else read(holder.engine.queue)


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics_endpoint)]
