"""Cross-site attacks in Debian's Chromium: with the admin logged in to the console, a page
served from another port of the same host (same site, so SameSite=Strict still sends the
cookie) tries to grant quota with a no-cors fetch and with a text/plain form, and to read
/ws/ops. None of it works; the console itself keeps working (its sockets use tickets, and no
token reaches the log)."""

import http.server
import io
import logging
import threading
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect

from tests.browser.console import send_in_playground, sign_up
from tests.live_server import LiveServer

ATTACK = """<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<form id="form" method="post" enctype="text/plain" target="sink" action="{quota}">
  <input name='{{"action":"grant","amount":7,"reason":"form","p":"' value='"}}'>
</form>
<script>
window.results = {{}};
fetch("{quota}", {{
  method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}},
  body: JSON.stringify({{action: "grant", amount: 5, reason: "no-cors"}}),
}}).then(() => window.results.fetch = "sent", (e) => window.results.fetch = String(e));
document.getElementById("form").submit();
const ws = new WebSocket("{ops}");
window.results.frames = [];
ws.onmessage = (event) => window.results.frames.push(event.data.slice(0, 40));
ws.onclose = (event) => window.results.close = event.code + " " + event.reason;
</script>
</body></html>
"""


class _Page(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_origin(server: LiveServer) -> Iterator[str]:
    """A page of another origin (another loopback port) that attacks the server."""
    _, user_id = sign_up(server, "victim", "victim")
    html = ATTACK.format(
        quota=f"{server.url}/api/admin/users/{user_id}/quota",
        ops=f"ws://127.0.0.1:{server.port}/ws/ops",
    )
    handler = type("AttackPage", (_Page,), {"body": html.encode()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/attack.html"
    httpd.shutdown()
    httpd.server_close()


def _quota(server: LiveServer, wid: str) -> int:
    quota: int = server.get("/api/me", server.login(wid)).json()["quota"]
    return quota


async def test_a_page_of_another_origin_can_neither_grant_quota_nor_read_ops(
    page: Page, server: LiveServer, other_origin: str
) -> None:
    before = _quota(server, "victim")
    attacker = await page.context.new_page()
    await attacker.goto(other_origin)
    # Refused, the socket closes; let in, it receives the table.
    await attacker.wait_for_function(
        "() => window.results.close !== undefined || window.results.frames.length > 0",
        timeout=30_000,
    )
    await attacker.wait_for_function("() => window.results.fetch !== undefined")
    await attacker.wait_for_load_state("load")
    results = await attacker.evaluate("() => window.results")
    assert results["frames"] == [], "the ops table leaked to another origin"
    assert results["close"].startswith("4403 "), results
    # The form's answer has loaded into the iframe (or been refused) by now.
    sink = attacker.frame(name="sink")
    assert sink is not None
    await sink.wait_for_load_state("load")
    assert _quota(server, "victim") == before


async def test_the_console_opens_its_sockets_with_tickets_and_logs_no_token(
    page: Page, server: LiveServer
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        await page.get_by_test_id("menu-ops").click()
        await expect(page.get_by_test_id("ops-live")).to_be_visible()
        await page.get_by_test_id("menu-playground").click()
        await send_in_playground(page, "hello")
        done = page.locator("[data-testid=assistant-turn][data-state=done]")
        await expect(done).to_be_visible(timeout=60_000)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = stream.getvalue()
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    assert "/ws/ops?ticket=[redacted]" in text and "/ws/chat?ticket=[redacted]" in text
    assert cookies["wxgpt_admin"] not in text
    assert "token=" not in text
