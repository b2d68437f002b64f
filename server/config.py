"""All of wxgpt's configuration: `WXGPT_*` environment variables and a `.env` file."""

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from generation.engine_config import EngineConfig, EngineEvents, EngineKind, NoEvents, RemoteSpec
from generation.model_spec import ModelSpec

DEV_SECRET = "wxgpt-development-secret-do-not-use-in-production"

# A thread per reply (single) gains nothing from a second slot on a CPU: the threads share
# the cores. The batched engine's step costs little more for 16 rows than for one (see the
# README's "Choosing an engine"); the remote engine's server batches on its own side.
DEFAULT_SLOTS: dict[str, int] = {"single": 1, "batched": 16, "remote": 1}

# What the store needs; WXGPT_WECHATPAY_API_BASE has a default.
WECHATPAY_SETTINGS = (
    "wechatpay_mchid",
    "wechatpay_merchant_serial",
    "wechatpay_merchant_key_file",
    "wechatpay_apiv3_key",
    "wechatpay_public_key_id",
    "wechatpay_public_key_file",
    "wechatpay_notify_url",
)

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
    wechat_api_base: str = "https://api.weixin.qq.com"

    # When WeChat gives no verdict: refuse the text (closed) or let it through for review.
    content_check_failure: Literal["open", "closed"] = "closed"
    content_check_timeout: float = Field(3.0, gt=0, le=30)
    # Replies are released to the user in checked pieces of at most this many characters.
    output_check_chars: int = Field(60, ge=8, le=2500)

    admin_session_ttl: int = Field(12 * 3600, ge=60)
    admin_login_attempts: int = Field(5, ge=1)
    admin_login_window: int = Field(300, ge=1)

    engine: EngineKind = "batched"
    # Unset: the engine's own default (DEFAULT_SLOTS).
    max_concurrent_generations: int | None = Field(None, ge=1)
    max_queue: int = Field(32, ge=0)
    max_message_chars: int = Field(2000, ge=1)
    max_message_tokens: int = Field(2048, ge=1)
    prefill_chunk_tokens: int = Field(512, ge=16)
    prefill_chunk_seconds: float = Field(0.5, ge=0, le=10)
    max_frame_bytes: int = Field(16 * 1024, ge=256)
    resume_grace_seconds: float = Field(60.0, ge=0, le=3600)

    inference_url: str | None = None
    inference_api_key: SecretStr | None = None
    inference_model: str | None = None
    inference_context_size: int | None = Field(None, ge=16)
    inference_connect_timeout: float = Field(5.0, gt=0)
    inference_first_token_timeout: float = Field(120.0, gt=0)
    inference_chunk_timeout: float = Field(30.0, gt=0)
    inference_health_interval: float = Field(5.0, gt=0)

    allowed_origins: CommaList = []
    trusted_proxies: CommaList = []
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    request_timeout: float = Field(10.0, gt=0, le=300)
    max_sockets_per_user: int = Field(5, ge=1)
    max_sockets_per_address: int = Field(100, ge=1)

    log_json: bool = False
    # The zone whose midnight resets daily free replies and invitation caps, and whose days
    # the dashboard's revenue is counted in.
    timezone: str = "Asia/Shanghai"

    # WeChat Pay (API v3, JSAPI); all of mchid to notify_url set turns the store on.
    wechatpay_mchid: str = ""
    wechatpay_merchant_serial: str = ""
    wechatpay_merchant_key_file: Path | None = None
    wechatpay_apiv3_key: SecretStr | None = None
    wechatpay_public_key_id: str = ""
    wechatpay_public_key_file: Path | None = None
    wechatpay_notify_url: str = ""
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"
    # How long an order can be paid; pending orders older than `reconcile_after` seconds are
    # asked about every `reconcile_interval` seconds, so a lost notice still credits.
    order_ttl: int = Field(30 * 60, ge=60, le=24 * 3600)
    reconcile_after: float = Field(180.0, ge=0)
    reconcile_interval: float = Field(60.0, gt=0)

    # Several replicas share live state through Redis; without it, through this process only.
    redis_url: str | None = None
    redis_prefix: str = Field("wxgpt", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    replica_id: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    lease_seconds: float = Field(15.0, ge=1.0, le=300.0)
    reply_save_interval: float = Field(0.5, ge=0.05, le=10.0)

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

    @field_validator("timezone")
    @classmethod
    def _a_known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"WXGPT_TIMEZONE must be an IANA time zone such as Asia/Shanghai, not {name!r}"
            ) from None
        return name

    @model_validator(mode="after")
    def _wechatpay_all_or_nothing(self) -> "Settings":
        missing = self.wechatpay_missing()
        if missing and len(missing) < len(WECHATPAY_SETTINGS):
            raise ValueError(
                "WeChat Pay is half configured: set "
                + ", ".join(f"WXGPT_{name.upper()}" for name in missing)
                + " too, or unset the WXGPT_WECHATPAY_* settings to run without the store"
            )
        if missing:
            return self
        if len(self.wechatpay_apiv3_key.get_secret_value()) != 32:  # type: ignore[union-attr]
            raise ValueError("WXGPT_WECHATPAY_APIV3_KEY must be the 32-character APIv3 key")
        for name in ("wechatpay_merchant_key_file", "wechatpay_public_key_file"):
            path = getattr(self, name)
            if not path.is_file():
                raise ValueError(f"WXGPT_{name.upper()} names no file: {path}")
        if not self.wechat_appid:
            raise ValueError("WeChat Pay needs WXGPT_WECHAT_APPID, the mini-program's appid")
        return self

    def wechatpay_missing(self) -> list[str]:
        """The WeChat Pay settings still unset; all of them when the store is off."""
        return [name for name in WECHATPAY_SETTINGS if not getattr(self, name)]

    @field_validator("inference_url")
    @classmethod
    def _an_http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"WXGPT_INFERENCE_URL must be an http(s) URL of the engine's API, for example "
                f"http://127.0.0.1:8000/v1, not {url!r}"
            )
        return url

    @model_validator(mode="after")
    def _inference_url_means_the_remote_engine(self) -> "Settings":
        if self.inference_url is None:
            if self.engine == "remote":
                raise ValueError(
                    "WXGPT_ENGINE=remote needs WXGPT_INFERENCE_URL, the engine's API base "
                    "(for example http://127.0.0.1:8000/v1)"
                )
            return self
        if "engine" in self.model_fields_set and self.engine != "remote":
            raise ValueError(
                f"WXGPT_INFERENCE_URL sends generation to an inference engine, but "
                f"WXGPT_ENGINE={self.engine} asks for a local one; unset one of them"
            )
        self.engine = "remote"
        return self

    @model_validator(mode="after")
    def _a_gguf_file_only_for_the_remote_engine(self) -> "Settings":
        if self.model is not None and self.model.endswith(".gguf") and self.engine != "remote":
            raise ValueError(
                f"WXGPT_MODEL={self.model} is a GGUF file, which wxgpt reads only the tokenizer "
                "of; serve it with llama.cpp's llama-server and set WXGPT_INFERENCE_URL, or "
                "point WXGPT_MODEL at a model folder for a local engine"
            )
        return self

    def engine_config(self, events: EngineEvents | None = None) -> EngineConfig:
        """What the engine is started with; `events` hears of its requests (for /metrics)."""
        return EngineConfig(
            model=self.model_spec(),
            slots=self.generation_slots,
            max_waiting=self.max_queue,
            max_message_tokens=self.max_message_tokens,
            prefill_chunk_tokens=self.prefill_chunk_tokens,
            prefill_chunk_seconds=self.prefill_chunk_seconds or None,
            remote=self.remote_spec(),
            events=events or NoEvents(),
        )

    @property
    def generation_slots(self) -> int:
        """Replies generated at once: WXGPT_MAX_CONCURRENT_GENERATIONS, else the engine's
        default."""
        return self.max_concurrent_generations or DEFAULT_SLOTS[self.engine]

    def remote_spec(self) -> RemoteSpec | None:
        """Where the remote engine sends generation; None for a local engine."""
        if self.inference_url is None:
            return None
        key = self.inference_api_key
        return RemoteSpec(
            url=self.inference_url,
            api_key=key.get_secret_value() if key else None,
            model=self.inference_model,
            context_size=self.inference_context_size,
            connect_timeout_s=self.inference_connect_timeout,
            first_token_timeout_s=self.inference_first_token_timeout,
            chunk_timeout_s=self.inference_chunk_timeout,
            health_interval_s=self.inference_health_interval,
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
