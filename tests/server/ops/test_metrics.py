"""/metrics on a real server: Prometheus text that prometheus-client parses, counters that
move with replies, and one registry per app."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.live_server import (
    LiveServer,
    chat_frame,
    open_chat,
    passes_for_deltas,
    recv,
    recv_until,
    stop_reply,
)
from tests.pace import StepFile
from tests.server.conftest import ServerFactory

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: LiveServer) -> Samples:
    """Every sample of /metrics by name and labels."""
    response = httpx.get(server.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_as_replies_are_generated(start_server: ServerFactory) -> None:
    server = start_server()
    before = scrape(server)
    assert value(before, "wxgpt_chat_sockets_open") == 0
    assert value(before, "wxgpt_replies_total", finish_reason="length") == 0
    assert value(before, "wxgpt_time_to_first_token_seconds_count") == 0

    ws, _ = await open_chat(server, server.login())
    assert value(scrape(server), "wxgpt_chat_sockets_open") == 1
    dones = []
    for question in ("hello", "and again"):
        await ws.send(chat_frame(question))
        dones.append((await recv_until(ws, "done"))[-1])
    await ws.send(chat_frame("   "))
    assert (await recv(ws))["code"] == "empty"

    after = scrape(server)
    assert value(after, "wxgpt_replies_total", finish_reason="length") == 2
    assert value(after, "wxgpt_generated_tokens_total") == sum(
        d["usage"]["completion_tokens"] for d in dones
    )
    assert value(after, "wxgpt_prompt_tokens_total") == sum(
        d["usage"]["prompt_tokens"] for d in dones
    )
    assert value(after, "wxgpt_time_to_first_token_seconds_count") == 2
    assert value(after, "wxgpt_time_to_first_token_seconds_sum") > 0
    assert value(after, "wxgpt_time_per_output_token_seconds_count") == 2
    assert value(after, "wxgpt_time_per_output_token_seconds_bucket", le="+Inf") == 2
    assert value(after, "wxgpt_chat_errors_total", code="empty") == 1
    assert value(after, "wxgpt_queue_depth") == 0
    assert value(after, "wxgpt_generations_running") == 0
    await ws.close()


async def test_a_stopped_reply_counts_as_cancelled(
    start_server: ServerFactory, gate: StepFile
) -> None:
    server = start_server(chat={"max_new_tokens": 500})
    ws, _ = await open_chat(server, server.login())
    gate.allow_more(passes_for_deltas(1))
    await ws.send(chat_frame("go on and on"))
    await recv_until(ws, "delta")
    await stop_reply(ws)
    gate.open()
    done = (await recv_until(ws, "done"))[-1]
    samples = scrape(server)
    assert value(samples, "wxgpt_replies_total", finish_reason="cancelled") == 1
    assert value(samples, "wxgpt_generated_tokens_total") == done["usage"]["completion_tokens"]
    await ws.close()


async def test_each_app_counts_only_its_own_replies(start_server: ServerFactory) -> None:
    first = start_server(db_name="first.sqlite3")
    ws, _ = await open_chat(first, first.login())
    await ws.send(chat_frame("hello"))
    await recv_until(ws, "done")
    await ws.close()
    assert value(scrape(first), "wxgpt_replies_total", finish_reason="length") == 1
    first.stop()
    # A second app in the same process starts from zero (and does not clash with the first).
    second = start_server(db_name="second.sqlite3")
    assert value(scrape(second), "wxgpt_replies_total", finish_reason="length") == 0
