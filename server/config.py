"""All of wxgpt's configuration: `WXGPT_*` environment variables and a `.env` file."""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from generation.engines import EngineKind
from generation.engines.base import EngineConfig
from generation.loading import ModelSpec

DEV_SECRET = "wxgpt-development-secret-do-not-use-in-production"

# A comma-separated list in the environment ("a, b"), a list in Python.
CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """One settings object; every field is `WXGPT_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="WXGPT_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    db_url: str = "sqlite://wxgpt.sqlite3"

    model: str | None = None
    allow_download: bool = False
    prompt_format: Literal["auto", "chat_template", "chitchat", "eos"] = "auto"
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    cache_dir: Path | None = None

    secret_key: str = DEV_SECRET
    token_ttl: int = Field(7 * 24 * 3600, ge=60)
    dev_login: bool = False
    default_quota: int = Field(50, ge=0)
    wechat_appid: str = ""
    wechat_secret: str = ""
    wechat_code2session_url: str = "https://api.weixin.qq.com/sns/jscode2session"

    admin_session_ttl: int = Field(12 * 3600, ge=60)
    admin_login_attempts: int = Field(5, ge=1)
    admin_login_window: int = Field(300, ge=1)

    engine: EngineKind = "single"
    max_concurrent_generations: int = Field(1, ge=1)
    max_queue: int = Field(32, ge=0)
    max_message_chars: int = Field(2000, ge=1)
    max_frame_bytes: int = Field(16 * 1024, ge=256)
    resume_grace_seconds: float = Field(60.0, ge=0, le=3600)

    allowed_origins: CommaList = []
    trusted_proxies: CommaList = []
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    request_timeout: float = Field(10.0, gt=0, le=300)
    max_sockets_per_user: int = Field(5, ge=1)
    max_sockets_per_address: int = Field(100, ge=1)

    log_json: bool = False

    @field_validator("allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> "Settings":
        if self.env == "production":
            if self.secret_key == DEV_SECRET or len(self.secret_key) < 32:
                raise ValueError(
                    "WXGPT_SECRET_KEY must be set to a random string of at least 32 "
                    "characters in production (for example: "
                    "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            if self.dev_login:
                raise ValueError(
                    "WXGPT_DEV_LOGIN=1 lets anyone log in as anyone; it is refused in production"
                )
        return self

    def engine_config(self) -> EngineConfig:
        """What the engine is started with."""
        return EngineConfig(
            model=self.model_spec(),
            slots=self.max_concurrent_generations,
            max_waiting=self.max_queue,
        )

    def model_spec(self) -> ModelSpec:
        """What the generation package should load."""
        return ModelSpec(
            source=self.model,
            allow_download=self.allow_download,
            cache_dir=self.cache_dir,
            prompt_format=self.prompt_format,
            device=self.device,
            dtype=self.dtype,
        )
