"""The `wxgpt` command: serve, migrate, chat, settings, admin."""

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from server.logs import configure_logging

if TYPE_CHECKING:
    from server.config import Settings


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `wxgpt` console script."""
    args = _parser().parse_args(argv)
    # The chat client's output is the reply itself; only problems belong beside it.
    configure_logging(logging.WARNING if args.run is _chat else logging.INFO, json_lines=False)
    try:
        args.run(args)
    except KeyboardInterrupt:
        sys.exit(130)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wxgpt", description="Self-hosted chat backend for a WeChat mini-program."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (WXGPT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (WXGPT_PORT, default 8000)")
    serve.add_argument(
        "--model",
        help="a bundled model (qwen2.5-coder-0.5b, the default, or smollm2), a model folder, "
        "or a hub id (WXGPT_MODEL)",
    )
    serve.add_argument(
        "--db-url", help="database URL (WXGPT_DB_URL, default sqlite://wxgpt.sqlite3)"
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations (aerich upgrade)")
    migrate.add_argument("--db-url", help="database URL (WXGPT_DB_URL)")
    migrate.set_defaults(run=_migrate)

    chat = commands.add_parser("chat", help="chat with a running server from the terminal")
    chat.add_argument(
        "message", nargs="*", help="messages to send in turn; none: read lines from stdin"
    )
    chat.add_argument("--url", default="http://127.0.0.1:8000", help="server address")
    chat.add_argument("--token", help="a user token; without one, the development login is used")
    chat.add_argument(
        "--wid", default="cli", help="development login id (server needs WXGPT_DEV_LOGIN=1)"
    )
    chat.add_argument("--conversation", type=int, help="continue this conversation")
    chat.set_defaults(run=_chat)

    settings = commands.add_parser(
        "settings", help="show or change generation settings (applied to the next reply)"
    )
    settings.add_argument(
        "changes", nargs="*", metavar="KEY=VALUE", help="e.g. temperature=0 max_new_tokens=128"
    )
    settings.add_argument("--db-url", help="database URL (WXGPT_DB_URL)")
    settings.set_defaults(run=_settings)

    admin = commands.add_parser("admin", help="manage admin console accounts")
    admin_commands = admin.add_subparsers(required=True, metavar="ACTION")
    create = admin_commands.add_parser(
        "create", help="create an admin account (password prompted, or read from stdin)"
    )
    create.add_argument("username")
    create.add_argument(
        "--role",
        choices=["admin", "ops"],
        default="admin",
        help="ops may only look (default admin)",
    )
    create.add_argument("--db-url", help="database URL (WXGPT_DB_URL)")
    create.set_defaults(run=_admin_create)
    return parser


def _load_settings(**overrides: Any) -> "Settings":
    # Imported here: config pulls in torch, which `wxgpt chat` does not need.
    from server.config import Settings

    values = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**values)
    except ValidationError as exc:
        sys.exit(f"wxgpt: bad configuration: {exc}")


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from generation.errors import GenerationError
    from generation.loading import check_available, prepare_model
    from server.app import create_app
    from server.serving import uvicorn_config

    settings = _load_settings(host=args.host, port=args.port, model=args.model, db_url=args.db_url)
    configure_logging(logging.INFO, json_lines=settings.log_json)
    try:
        check_available(settings.model_spec())
        # A bundled model's GGUF is joined and its sha256 checked here, before serving: a
        # damaged download stops the start instead of leaving a server that never gets ready.
        prepare_model(settings.model_spec())
    except GenerationError as exc:
        sys.exit(f"wxgpt: {exc}")
    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run()


def _migrate(args: argparse.Namespace) -> None:
    from storage.migrate import apply_migrations

    settings = _load_settings(db_url=args.db_url)
    applied = asyncio.run(apply_migrations(settings.db_url))
    print(f"applied: {', '.join(applied)}" if applied else "database is up to date")


def _chat(args: argparse.Namespace) -> None:
    from server.chat.client import ChatClientError, ChatOptions, run_chat

    options = ChatOptions(
        url=args.url, token=args.token, wid=args.wid, conversation_id=args.conversation
    )
    try:
        asyncio.run(run_chat(options, list(args.message)))
    except ChatClientError as exc:
        sys.exit(f"wxgpt chat: {exc}")


def _settings(args: argparse.Namespace) -> None:
    settings = _load_settings(db_url=args.db_url)
    changes = {}
    for change in args.changes:
        key, sep, raw = change.partition("=")
        if not sep:
            sys.exit(f"wxgpt settings: expected KEY=VALUE, got {change!r}")
        changes[key.strip()] = _parse_value(raw)
    try:
        shown = asyncio.run(_apply_settings(settings.db_url, changes))
    except ValidationError as exc:
        sys.exit(f"wxgpt settings: {exc}")
    print(json.dumps(shown, indent=2))


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _admin_create(args: argparse.Namespace) -> None:
    from server.admin.accounts import AdminAccountError, create_admin_account

    settings = _load_settings(db_url=args.db_url)
    password = _read_new_password()
    try:
        asyncio.run(create_admin_account(settings.db_url, args.username, password, args.role))
    except AdminAccountError as exc:
        sys.exit(f"wxgpt admin create: {exc}")
    print(f"created {args.role} {args.username!r}; log in at /admin")


def _read_new_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    import getpass

    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        sys.exit("wxgpt admin create: the passwords differ")
    return password


async def _apply_settings(db_url: str, changes: dict[str, Any]) -> dict[str, Any]:
    from server.chat.settings import ChatSettings, load_chat_settings, save_chat_settings
    from storage.database import connect, disconnect
    from storage.migrate import pending_migrations

    unknown = sorted(set(changes) - set(ChatSettings.model_fields))
    if unknown:
        known = ", ".join(ChatSettings.model_fields)
        sys.exit(f"wxgpt settings: unknown setting(s) {', '.join(unknown)}; known: {known}")
    if await pending_migrations(db_url):
        sys.exit("wxgpt settings: the database is not migrated; run `wxgpt migrate` first")
    await connect(db_url)
    try:
        current = await (save_chat_settings(changes) if changes else load_chat_settings())
    finally:
        await disconnect()
    return current.model_dump()
