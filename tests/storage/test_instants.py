"""Times in any zone are stored and compared as the instants they are, on SQLite too."""

from datetime import UTC, datetime, timedelta, timezone

from storage.models import User
from storage.users import get_or_create_user


async def test_a_time_written_in_another_zone_is_stored_and_compared_as_its_instant(
    db: str,
) -> None:
    user, _ = await get_or_create_user("dev:zone", default_quota=0)
    # Fourteen hours ahead of UTC: its digits are later than the same instant's in UTC.
    seen = datetime.now(UTC).astimezone(timezone(timedelta(hours=14)))
    await User.filter(id=user.id).update(last_seen_at=seen)
    assert (await User.get(id=user.id)).last_seen_at == seen
    around = User.filter(
        last_seen_at__gte=seen - timedelta(seconds=1),
        last_seen_at__lt=(seen + timedelta(seconds=1)).astimezone(UTC),
    )
    assert await around.count() == 1
