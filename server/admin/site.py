"""The admin console's built single-page app, served at /admin/ with a fallback to index.html."""

from pathlib import Path

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from server.errors import ApiError

DIST = Path(__file__).resolve().parents[2] / "admin_ui" / "dist"
# Vite names built assets by content hash, so they never change under one name.
IMMUTABLE = "public, max-age=31536000, immutable"


class SpaFiles(StaticFiles):
    """Static files of the build; a path that names no file gets index.html, so the SPA's own
    router (history mode) handles deep links such as /admin/users/3."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, check_dir=False)
        self.index = directory / "index.html"

    async def check_config(self) -> None:
        if not await anyio.Path(self.index).is_file():
            raise ApiError(503, "not_ready", "the admin console is not built; run `make ui`")
        await super().check_config()

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            # A missing asset (a name with an extension) stays a 404, not a page of HTML.
            if exc.status_code != 404 or "." in Path(path).name:
                raise
            response = await super().get_response("index.html", scope)
        if path.startswith("assets/"):
            response.headers["Cache-Control"] = IMMUTABLE
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def routes() -> list[BaseRoute]:
    """/admin redirects to /admin/; everything under it is the SPA built into DIST."""
    return [
        Route("/admin", lambda request: RedirectResponse("/admin/", status_code=308)),
        Mount("/admin", app=SpaFiles(DIST)),
    ]
