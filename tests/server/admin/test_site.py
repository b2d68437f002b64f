"""The admin console's files served at /admin: deep links fall back to index.html, a missing
asset stays a 404, and an unbuilt console says how to build it."""

from pathlib import Path

import httpx
import pytest

from server.admin import site as admin_site
from tests.live_server import error_of
from tests.server.conftest import ServerFactory

INDEX = "<!doctype html><title>wxgpt admin</title>"


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "dist"
    monkeypatch.setattr(admin_site, "DIST", directory)
    return directory


def test_built_console_is_served_with_a_fallback_for_deep_links(
    dist: Path, start_server: ServerFactory
) -> None:
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "app-1a2b.js").write_text("console.log('wxgpt')")
    server = start_server()

    moved = httpx.get(server.url + "/admin")
    assert moved.status_code == 308
    assert moved.headers["location"] == "/admin/"
    for path in ["/admin/", "/admin/users/3", "/admin/ops"]:
        page = httpx.get(server.url + path)
        assert (page.status_code, page.text) == (200, INDEX), path
        assert page.headers["cache-control"] == "no-cache"
    asset = httpx.get(server.url + "/admin/assets/app-1a2b.js")
    assert asset.text == "console.log('wxgpt')"
    assert "immutable" in asset.headers["cache-control"]
    assert error_of(httpx.get(server.url + "/admin/assets/gone-9f8e.js"))[:2] == (404, "not_found")
    # The API keeps its own 404s; the fallback is for /admin only.
    assert httpx.get(server.url + "/api/nothing-here").status_code == 404


def test_unbuilt_console_answers_503_saying_to_run_make_ui(
    dist: Path, start_server: ServerFactory
) -> None:
    server = start_server()
    status, code, message = error_of(httpx.get(server.url + "/admin/"))
    assert (status, code) == (503, "not_ready")
    assert "make ui" in message
