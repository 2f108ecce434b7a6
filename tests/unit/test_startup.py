"""Start-up refusals: forgeable secrets and malformed settings are one line naming the setting."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import outreach
from outreach.cli import main
from outreach.config import DEV_SECRET_KEY, Config, ConfigError
from outreach.dev import served_base_url
from outreach.startup import check_startup, dev_config

LONG = "x" * 32


@pytest.mark.parametrize("name, raw", [
    ("OUTREACH_SMTP_PORT", "abc"),
    ("OUTREACH_SMTP_PORT", "25.5"),
    ("OUTREACH_SMTP_TIMEOUT", "soon"),
    ("OUTREACH_SMTP_TIMEOUT", "nan"),
    ("OUTREACH_DEFAULT_RATE_PER_SECOND", "inf"),
    ("OUTREACH_SMTP_TLS", "maybe"),
    ("OUTREACH_INTAKE_RATE_LIMIT", "ten/minute"),
    ("OUTREACH_INTAKE_RATE_LIMIT", "10/fortnight"),
])
def test_a_malformed_setting_is_a_config_error_naming_it(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({name: raw})
    message = str(caught.value)
    assert message.startswith(name + "=") and "\n" not in message


def test_well_formed_settings_parse() -> None:
    config = Config.from_env({"OUTREACH_SMTP_PORT": " 2525 ", "OUTREACH_SMTP_TLS": "STARTTLS",
                              "OUTREACH_INTAKE_RATE_LIMIT": "5/s", "OUTREACH_SMTP_TIMEOUT": "2.5"})
    assert (config.smtp_port, config.smtp_tls, config.intake_rate, config.smtp_timeout) == (
        2525, "starttls", (5, 1), 2.5)


@pytest.mark.parametrize("secret, why", [
    (DEV_SECRET_KEY, "built-in development value"),
    ("x" * 31, "31 bytes"),
    ("é" * 15, "30 bytes"),  # bytes, not characters
])
def test_a_forgeable_secret_is_refused(secret: str, why: str) -> None:
    config = Config(secret_key=secret)
    with pytest.raises(ConfigError, match="OUTREACH_SECRET_KEY") as caught:
        check_startup(config)
    assert why in str(caught.value)
    with pytest.raises(ConfigError, match="OUTREACH_SECRET_KEY"):
        outreach.create_app(config)
    check_startup(dev_config(config))  # `outreach dev` keeps its built-in default


def test_a_long_secret_starts() -> None:
    check_startup(Config(secret_key=LONG))
    assert outreach.create_app(Config(secret_key=LONG, broker_url="memory://")).extensions[
        "outreach.config"].secret_key == LONG


@pytest.mark.parametrize("args", [["worker"], ["beat"], ["api-key", "create", "k"], ["worker-ping"]])
@pytest.mark.parametrize("env, setting", [
    ({"OUTREACH_SECRET_KEY": DEV_SECRET_KEY}, "OUTREACH_SECRET_KEY"),
    ({"OUTREACH_SECRET_KEY": "short"}, "OUTREACH_SECRET_KEY"),
    ({"OUTREACH_SMTP_PORT": "abc"}, "OUTREACH_SMTP_PORT"),
])
def test_commands_refuse_with_one_line(args: list[str], env: dict[str, str], setting: str) -> None:
    env = {"OUTREACH_REDIS_URL": "redis://127.0.0.1:1/0", "OUTREACH_SECRET_KEY": LONG, **env}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + setting), result.output


def test_dev_links_follow_the_served_port_unless_base_url_is_set() -> None:
    assert served_base_url(Config(), "127.0.0.1", 8123) == "http://127.0.0.1:8123"
    assert served_base_url(Config(), "0.0.0.0", 9000) == "http://localhost:9000"
    assert served_base_url(Config(), "::1", 9000) == "http://[::1]:9000"
    assert served_base_url(Config(base_url="https://mail.example.com"), "127.0.0.1", 9000) == (
        "https://mail.example.com")


def test_dev_app_starts_on_the_default_secret_with_links_for_its_port() -> None:
    from outreach.dev import build_dev_app

    app, capture = build_dev_app(Config(), "127.0.0.1", 8765)
    try:
        config = app.extensions["outreach.config"]
        assert config.secret_key == DEV_SECRET_KEY and config.base_url == "http://127.0.0.1:8765"
    finally:
        capture.stop()
