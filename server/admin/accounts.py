"""Creating admin accounts from the command line, with the rules a password must meet."""

from storage import admins, audit
from storage.database import connect, disconnect
from storage.errors import AdminExists
from storage.migrate import pending_migrations
from storage.models import AdminRole

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
USERNAME_CHARS = 64


class AdminAccountError(Exception):
    """The account could not be created; the message says why."""


def check_new_account(username: str, password: str) -> None:
    """Raise AdminAccountError unless the username and password are acceptable."""
    if not username.strip() or len(username) > USERNAME_CHARS:
        raise AdminAccountError(f"the username must be 1 to {USERNAME_CHARS} characters")
    if username != username.strip():
        raise AdminAccountError("the username must not start or end with spaces")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AdminAccountError(
            f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters "
            f"(got {len(password)})"
        )


async def create_admin_account(db_url: str, username: str, password: str, role: str) -> None:
    """Create the account on a migrated database and record it in the audit log."""
    check_new_account(username, password)
    if await pending_migrations(db_url):
        raise AdminAccountError("the database is not migrated; run `wxgpt migrate` first")
    await connect(db_url)
    try:
        await admins.create_admin(username, password, AdminRole(role))
        await audit.record("cli", "admin.create", f"admin:{username}", {"role": role})
    except AdminExists as exc:
        raise AdminAccountError(str(exc)) from None
    finally:
        await disconnect()
