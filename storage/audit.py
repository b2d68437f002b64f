"""The audit log: who did what to which target, and when."""

from typing import Any

from storage.models import AuditEntry


async def record(
    admin: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> None:
    """Append one admin action to the log."""
    await AuditEntry.create(admin=admin, action=action, target=target, detail=detail or {})


async def list_entries(
    *, admin: str | None, action: str | None, target: str | None, offset: int, limit: int
) -> tuple[list[AuditEntry], int]:
    """A page of entries, newest first, matching every filter given, and their total."""
    query = AuditEntry.all()
    if admin:
        query = query.filter(admin=admin)
    if action:
        query = query.filter(action__startswith=action)
    if target:
        query = query.filter(target__icontains=target)
    total = await query.count()
    return list(await query.order_by("-id").offset(offset).limit(limit)), total
