"""Settings the operator can change at run time, kept in the settings table: how replies are
generated, the quota new users start with, daily free replies and invitation rewards."""

import dataclasses
import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, ValidationError

from generation.sampling import SamplingParams
from server.config import Settings
from storage import settings as stored
from storage.quota import FreeDay

logger = logging.getLogger(__name__)

PREFIX = "generation."


class ChatSettings(BaseModel):
    """Sampling and memory settings applied to the next reply, and new users' quota."""

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_k: int = Field(50, ge=0, le=1000)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0)
    max_new_tokens: int = Field(256, ge=1, le=4096)
    history_turns: int = Field(20, ge=0, le=200)
    # None: new users get WXGPT_DEFAULT_QUOTA.
    default_quota: int | None = Field(None, ge=0, le=1_000_000)
    # Free replies each user gets per day (reset at midnight in WXGPT_TIMEZONE); 0 is off.
    daily_free: int = Field(0, ge=0, le=10_000)
    # Replies an invitation gives both sides, and how many invitations a day reward an inviter.
    invite_reward: int = Field(0, ge=0, le=10_000)
    invite_daily_cap: int = Field(10, ge=0, le=10_000)

    def sampling(self) -> SamplingParams:
        """The sampling part, as the engine takes it."""
        return SamplingParams(
            **self.model_dump(include={f.name for f in dataclasses.fields(SamplingParams)})
        )

    def free_day(self, settings: Settings, now: datetime) -> FreeDay:
        """Today in WXGPT_TIMEZONE and its free replies."""
        return FreeDay(now.astimezone(ZoneInfo(settings.timezone)).date(), self.daily_free)


async def load_chat_settings() -> ChatSettings:
    """The stored settings over the defaults; a bad stored value falls back to its default."""
    values = {
        key.removeprefix(PREFIX): value
        for key, value in (await stored.get_settings(PREFIX)).items()
    }
    try:
        return ChatSettings.model_validate(values)
    except ValidationError as exc:
        logger.error("stored generation settings are invalid, using defaults for them: %s", exc)
        invalid = {error["loc"][0] for error in exc.errors()}
        return ChatSettings.model_validate({k: v for k, v in values.items() if k not in invalid})


async def save_chat_settings(changes: dict[str, Any]) -> ChatSettings:
    """Validate `changes` against the current settings and store them; raises ValidationError."""
    current = await load_chat_settings()
    # Strict: `true` is not a top_k of 1, nor `"0.5"` a temperature.
    updated = ChatSettings.model_validate({**current.model_dump(), **changes}, strict=True)
    await stored.set_settings({PREFIX + key: getattr(updated, key) for key in changes})
    return updated


async def starting_quota(settings: Settings) -> int:
    """The quota a new user gets: the stored setting, else WXGPT_DEFAULT_QUOTA."""
    stored_quota = (await load_chat_settings()).default_quota
    return settings.default_quota if stored_quota is None else stored_quota
