"""Moderation cases: blocked text with the verdict that blocked it, and users' reports."""

from datetime import UTC, datetime, timedelta

from storage.models import CaseKind, CaseState, ModerationCase


async def file_case(
    kind: CaseKind,
    user_id: int,
    content: str,
    *,
    verdict: str,
    checker: str | None = None,
    label: str = "",
    note: str = "",
    message_id: int | None = None,
    conversation_id: int | None = None,
) -> ModerationCase:
    """Store a case for the moderation page."""
    return await ModerationCase.create(
        kind=kind,
        user_id=user_id,
        content=content,
        verdict=verdict,
        checker=checker,
        label=label[:64],
        note=note[:255],
        message_id=message_id,
        conversation_id=conversation_id,
    )


class CaseNotFound(LookupError):
    """No moderation case has that id."""


async def list_cases(
    *,
    state: CaseState | None,
    kind: CaseKind | None,
    user_id: int | None,
    since: datetime | None,
    until: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[ModerationCase], int]:
    """Cases newest first, with their users and messages, and how many match."""
    query = ModerationCase.all()
    if state is not None:
        query = query.filter(state=state)
    if kind is not None:
        query = query.filter(kind=kind)
    if user_id is not None:
        query = query.filter(user_id=user_id)
    if since is not None:
        query = query.filter(created_at__gte=since)
    if until is not None:
        query = query.filter(created_at__lt=until)
    total = await query.count()
    cases = (
        await query.order_by("-id").offset(offset).limit(limit).prefetch_related("user", "message")
    )
    return list(cases), total


async def resolve_case(case_id: int, state: CaseState, actor: str) -> ModerationCase:
    """Mark the case dismissed or banned by `actor`; raises CaseNotFound."""
    case = await ModerationCase.get_or_none(id=case_id)
    if case is None:
        raise CaseNotFound(f"moderation case {case_id} not found")
    case.state = state
    case.resolved_by = actor
    case.resolved_at = datetime.now(UTC)
    await case.save(update_fields=["state", "resolved_by", "resolved_at"])
    await case.fetch_related("user", "message")
    return case


async def close_open_cases(user_id: int, actor: str) -> int:
    """Mark every open case of a banned user as banned; returns how many."""
    return await ModerationCase.filter(user_id=user_id, state=CaseState.OPEN).update(
        state=CaseState.BANNED, resolved_by=actor, resolved_at=datetime.now(UTC)
    )


async def blocked_per_day(now: datetime, days: int = 14) -> list[tuple[str, int]]:
    """Blocked messages (questions and replies) per UTC day, the last `days` days."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=days - 1)
    # Counted in Python from one date column, as the dashboard's message counts are.
    created = await ModerationCase.filter(
        created_at__gte=first_day, verdict="risky", kind__in=[CaseKind.INPUT, CaseKind.OUTPUT]
    ).values_list("created_at", flat=True)
    per_day = {(first_day + timedelta(days=i)).date().isoformat(): 0 for i in range(days)}
    for moment in created:
        assert isinstance(moment, datetime)
        day = moment.astimezone(UTC).date().isoformat()
        if day in per_day:
            per_day[day] += 1
    return list(per_day.items())
