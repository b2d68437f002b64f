"""Write the next migration for a change to storage/models.py, for SQLite and PostgreSQL.

    python -m storage.new_migration NAME [--pg-url postgres://postgres@127.0.0.1:5432/test]

aerich writes a migration's SQL for the one database it is connected to, and wxgpt runs on
both; this runs `aerich migrate` once against a fresh SQLite file and once against a fresh
PostgreSQL database (each first brought up to date with the existing migrations), then
writes one migration module carrying both dialects' SQL, as the existing ones do.
"""

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aerich import Command
from aerich.ddl.sqlite import SqliteDDL
from aerich.migrate import Migrate
from tortoise.context import TortoiseContext

from storage.database import APP, tortoise_config
from storage.migrate import MIGRATIONS

TEMPLATE = '''"""{doc}

As in the initial migration, aerich's SQL for SQLite and for PostgreSQL are both kept, and
MODELS_STATE is aerich's own.
"""

from tortoise import BaseDBAsyncClient

from storage.migration_sql import sql_for

RUN_IN_TRANSACTION = True

UPGRADE = {{
    "sqlite": """{sqlite_up}""",
    "postgres": """{postgres_up}""",
}}

DOWNGRADE = {{
    "sqlite": """{sqlite_down}""",
    "postgres": """{postgres_down}""",
}}


async def upgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, DOWNGRADE)


MODELS_STATE = (
{models_state}
)
'''


def _generate(db_url: str, name: str) -> tuple[Path, str]:
    """The folder and name of aerich's migration file for `db_url`, written into a copy of
    the migrations folder.

    Each dialect runs in a process of its own: aerich keeps the operations it collects in
    class attributes, so a second run in one process would repeat the first one's SQL.
    """
    location = Path(tempfile.mkdtemp(prefix="wxgpt-migration-"))
    shutil.copytree(MIGRATIONS, location, dirs_exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "storage.new_migration", "--aerich", db_url, str(location), name],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"aerich failed on {db_url.split(':')[0]}:\n{done.stderr}")
    return location, done.stdout.strip().splitlines()[-1]


def _skip_sqlite_comments() -> None:
    """SQLite keeps no column comments, so a changed one (as when a CharEnumField gains a
    value) is nothing to do there; aerich refuses such a change outright instead."""
    add_operator = Migrate._add_operator.__func__  # type: ignore[attr-defined]

    def without_empty(cls: type[Migrate], operator: str, *args: Any, **kwargs: Any) -> None:
        if operator:
            add_operator(cls, operator, *args, **kwargs)

    SqliteDDL.set_comment = lambda self, model, field_describe: ""  # type: ignore[method-assign]
    Migrate._add_operator = classmethod(without_empty)  # type: ignore[method-assign,assignment]


async def _aerich_migrate(db_url: str, location: Path, name: str) -> str:
    if db_url.startswith("sqlite"):
        _skip_sqlite_comments()
    async with TortoiseContext():
        command = Command(tortoise_config=tortoise_config(db_url), app=APP, location=str(location))
        await command.init()
        await command.upgrade(run_in_transaction=True)
        # aerich diffs against the state it read at init; read it again now it is current.
        await command.init()
        created = await command.migrate(name, no_input=True)
    if not created:
        raise SystemExit("storage/models.py has no change that needs a migration")
    return created


def _parts(source: str) -> tuple[str, str, str]:
    """Upgrade SQL, downgrade SQL and the MODELS_STATE literal of an aerich migration."""
    sql = re.findall(r'return """(.*?)"""', source, re.S)
    state = re.search(r"MODELS_STATE = \((.*?)\n\)", source, re.S)
    if len(sql) != 2 or state is None:
        raise SystemExit("aerich wrote a migration of an unexpected shape")
    return sql[0], sql[1], state.group(1).strip("\n")


async def _write(name: str, doc: str, pg_url: str) -> Path:
    with tempfile.TemporaryDirectory() as folder:
        sqlite_dir, created = _generate(f"sqlite://{Path(folder) / 'db.sqlite3'}", name)
    database = f"wxgpt_migration_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        parts = urlsplit(pg_url)
        postgres_dir, postgres_file = _generate(
            urlunsplit(parts._replace(path=f"/{database}")), name
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    sqlite_up, sqlite_down, state = _parts((sqlite_dir / APP / created).read_text())
    postgres_up, postgres_down, _ = _parts((postgres_dir / APP / postgres_file).read_text())
    target = MIGRATIONS / APP / created
    target.write_text(
        TEMPLATE.format(
            doc=doc,
            sqlite_up=sqlite_up,
            postgres_up=postgres_up,
            sqlite_down=sqlite_down,
            postgres_down=postgres_down,
            models_state=state,
        )
    )
    for generated in (sqlite_dir, postgres_dir):
        shutil.rmtree(generated, ignore_errors=True)
    return target


def main() -> None:
    if sys.argv[1:2] == ["--aerich"]:
        url, location, name = sys.argv[2:5]
        print(asyncio.run(_aerich_migrate(url, Path(location), name)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="a short name, e.g. reply_leases")
    parser.add_argument("--doc", default="", help="the migration's docstring: what it changes")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    target = asyncio.run(_write(args.name, args.doc or args.name, args.pg_url))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
