import pytest
from pydantic import ValidationError

from server.config import DEV_SECRET, Settings


def test_defaults_suit_development(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None)
    assert settings.env == "development"
    assert settings.db_url == "sqlite://wxgpt.sqlite3"
    assert settings.model is None
    assert settings.allow_download is False
    assert settings.secret_key == DEV_SECRET


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WXGPT_PORT", "9001")
    monkeypatch.setenv("WXGPT_MODEL", "/srv/models/gpt2")
    monkeypatch.setenv("WXGPT_ALLOW_DOWNLOAD", "1")
    monkeypatch.setenv("WXGPT_RESUME_GRACE_SECONDS", "2.5")
    settings = Settings(_env_file=None)
    assert settings.resume_grace_seconds == 2.5
    assert (settings.port, settings.model, settings.allow_download) == (
        9001,
        "/srv/models/gpt2",
        True,
    )
    assert settings.model_spec().source == "/srv/models/gpt2"


def test_origin_and_proxy_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).allowed_origins == []
    assert Settings(_env_file=None).trusted_proxies == [], "forwarded headers: none by default"
    monkeypatch.setenv("WXGPT_ALLOWED_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("WXGPT_TRUSTED_PROXIES", "10.0.0.1,10.0.0.2")
    settings = Settings(_env_file=None)
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == ["10.0.0.1", "10.0.0.2"]


def test_env_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("WXGPT_DEFAULT_QUOTA=7\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().default_quota == 7


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({}, "WXGPT_SECRET_KEY"),
        ({"secret_key": "short"}, "at least 32 characters"),
        ({"secret_key": "x" * 40, "dev_login": True}, "WXGPT_DEV_LOGIN"),
    ],
)
def test_production_has_no_working_default_secret(values: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        Settings(_env_file=None, env="production", **values)


def test_production_with_a_real_secret_is_accepted() -> None:
    assert Settings(_env_file=None, env="production", secret_key="s" * 48).env == "production"


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="port"):
        Settings(_env_file=None, port=70000)
    with pytest.raises(ValidationError, match="prompt_format"):
        Settings(_env_file=None, prompt_format="haiku")
    with pytest.raises(ValidationError, match="resume_grace_seconds"):
        Settings(_env_file=None, resume_grace_seconds=-1)


def test_an_inference_url_means_the_remote_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WXGPT_INFERENCE_URL", "http://10.0.0.5:8000/v1")
    monkeypatch.setenv("WXGPT_INFERENCE_API_KEY", "sk-secret-value")
    monkeypatch.setenv("WXGPT_INFERENCE_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    settings = Settings(_env_file=None)
    assert settings.engine == "remote"
    remote = settings.engine_config().remote
    assert remote is not None
    assert (remote.url, remote.api_key, remote.model) == (
        "http://10.0.0.5:8000/v1",
        "sk-secret-value",
        "Qwen/Qwen2.5-0.5B-Instruct",
    )
    assert "sk-secret-value" not in repr(settings)
    assert "sk-secret-value" not in repr(remote)
    assert Settings(_env_file=None, engine="remote").engine == "remote"
    assert Settings(_env_file=None).engine_config().remote is not None


def test_a_gguf_file_is_a_model_for_the_remote_engine() -> None:
    settings = Settings(
        _env_file=None, model="/srv/qwen.gguf", inference_url="http://127.0.0.1:8080/v1"
    )
    assert settings.model_spec().source == "/srv/qwen.gguf"


def test_a_local_engine_has_no_remote_spec() -> None:
    settings = Settings(_env_file=None, engine="batched")
    assert settings.engine_config().remote is None


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"engine": "remote"}, "WXGPT_ENGINE=remote needs WXGPT_INFERENCE_URL"),
        (
            {"engine": "batched", "inference_url": "http://127.0.0.1:8000/v1"},
            "WXGPT_ENGINE=batched asks for a local one",
        ),
        ({"inference_url": "127.0.0.1:8000/v1"}, "must be an http\\(s\\) URL"),
        ({"inference_url": "ftp://engine/v1"}, "must be an http\\(s\\) URL"),
        ({"model": "/srv/qwen.gguf"}, "WXGPT_MODEL=/srv/qwen.gguf is a GGUF file"),
    ],
)
def test_inference_settings_that_contradict_are_refused(values: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        Settings(_env_file=None, **values)


def test_a_half_configured_store_is_refused_naming_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="WXGPT_WECHATPAY_APIV3_KEY") as caught:
        Settings(_env_file=None, wechatpay_mchid="1900000109", wechat_appid="wx-app")
    assert "WXGPT_WECHATPAY_MCHID" not in str(caught.value)
    assert Settings(_env_file=None).wechatpay_missing()


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="IANA time zone"):
        Settings(_env_file=None, timezone="Mars/Olympus")


def test_a_store_whose_key_file_is_missing_is_refused(tmp_path) -> None:
    values = {
        "wechat_appid": "wx-app",
        "wechatpay_mchid": "1900000109",
        "wechatpay_merchant_serial": "5157F09E",
        "wechatpay_merchant_key_file": tmp_path / "apiclient_key.pem",
        "wechatpay_apiv3_key": "k" * 32,
        "wechatpay_public_key_id": "PUB_KEY_ID_01",
        "wechatpay_public_key_file": tmp_path / "pub_key.pem",
        "wechatpay_notify_url": "https://wxgpt.example/api/pay/wechat/notify",
    }
    with pytest.raises(ValidationError, match="WXGPT_WECHATPAY_MERCHANT_KEY_FILE names no file"):
        Settings(_env_file=None, **values)
    with pytest.raises(ValidationError, match="32-character APIv3 key"):
        Settings(_env_file=None, **{**values, "wechatpay_apiv3_key": "short"})
