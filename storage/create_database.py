"""`python -m storage.create_database postgres://…/NAME`: create the PostgreSQL database NAME
if it does not exist yet (for `make replicas`); nothing to do for SQLite, which creates its
file itself."""

import asyncio
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg


async def create_database(url: str) -> bool:
    """Create the database `url` names, connecting to its server's `postgres` database;
    returns whether it was created."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or '"' in name:
        raise SystemExit(f"{url!r} names no usable database")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres", query="")))
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await admin.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await admin.close()


def main() -> None:
    url = sys.argv[1]
    if not url.startswith(("postgres://", "postgresql://")):
        print(f"{url} is not PostgreSQL; nothing to create")
        return
    created = asyncio.run(create_database(url))
    print(f"created database {urlsplit(url).path.lstrip('/')}" if created else "database exists")


if __name__ == "__main__":
    main()
