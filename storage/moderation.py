"""Moderation cases: blocked text with the verdict that blocked it, and users' reports."""

from storage.models import CaseKind, ModerationCase


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
