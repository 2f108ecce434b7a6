"""Start-up refusals: forgeable secrets and malformed settings are one line naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import outreach
from outreach.cli.dev import served_base_url
from outreach.cli.main import main
from outreach.config import DEV_SECRET_KEY, Config, ConfigError
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
    from outreach.cli.dev import build_dev_app

    app, capture = build_dev_app(Config(), "127.0.0.1", 8765)
    try:
        config = app.extensions["outreach.config"]
        assert config.secret_key == DEV_SECRET_KEY and config.base_url == "http://127.0.0.1:8765"
    finally:
        capture.stop()


# ---------------------------------------------------------------- deliverability settings


def _key(tmp_path: Path, algorithm: str = "rsa", bits: int = 2048) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = tmp_path / f"{algorithm}{bits}.pem"
    if algorithm == "rsa" and bits < 2048:  # generate_key refuses weak keys: make one by hand
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    else:
        from outreach.mail.dkim import generate_key

        path.write_bytes(generate_key(algorithm))
    return str(path)


def _dkim(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {"dkim_domain": "outreach.example", "dkim_selector": "s1",
            "dkim_private_key_file": _key(tmp_path), **overrides}


@pytest.mark.parametrize("case, setting, why", [
    ("missing file", "OUTREACH_DKIM_PRIVATE_KEY_FILE", "cannot read"),
    ("unreadable file", "OUTREACH_DKIM_PRIVATE_KEY_FILE", "cannot read"),
    ("not a key", "OUTREACH_DKIM_PRIVATE_KEY_FILE", "not a PEM private key"),
    ("weak key", "OUTREACH_DKIM_PRIVATE_KEY_FILE", "1024 bits"),
    ("bad selector", "OUTREACH_DKIM_SELECTOR", "not a DKIM selector"),
    ("no selector", "OUTREACH_DKIM_SELECTOR", "not set"),
    ("no key file", "OUTREACH_DKIM_PRIVATE_KEY_FILE", "not set"),
])
def test_bad_dkim_settings_refuse_the_start(tmp_path: Path, case: str, setting: str, why: str) -> None:
    settings = _dkim(tmp_path)
    if case == "missing file":
        settings["dkim_private_key_file"] = str(tmp_path / "nowhere.pem")
    elif case == "unreadable file":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        os.chmod(settings["dkim_private_key_file"], 0)
    elif case == "not a key":
        (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
        settings["dkim_private_key_file"] = str(tmp_path / "junk.pem")
    elif case == "weak key":
        settings["dkim_private_key_file"] = _key(tmp_path, bits=1024)
    elif case == "bad selector":
        settings["dkim_selector"] = "bad selector!"
    elif case == "no selector":
        settings["dkim_selector"] = ""
    elif case == "no key file":
        settings["dkim_private_key_file"] = ""
    config = Config(secret_key=LONG, **settings)
    with pytest.raises(ConfigError) as caught:
        check_startup(config)
    message = str(caught.value)
    assert message.startswith(setting) and why in message and "\n" not in message
    with pytest.raises(ConfigError, match=setting):
        outreach.create_app(config)
    with pytest.raises(ConfigError, match=setting):  # `outreach dev` too: it would never sign
        check_startup(dev_config(config))


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_good_dkim_settings_start(tmp_path: Path, algorithm: str) -> None:
    check_startup(Config(secret_key=LONG, **_dkim(tmp_path, dkim_private_key_file=_key(
        tmp_path, algorithm))))


@pytest.mark.parametrize("limits", ["gmail.com=fast", "gmail.com=0/s", "=3/s", "gmail.com 20/s",
                                    "gmail.com=20/s,0c", "gmail.com=20/s,5", "gmail.com=5c,5c"])
def test_malformed_domain_limits_refuse_the_start(limits: str) -> None:
    config = Config(secret_key=LONG, domain_limits=limits)
    with pytest.raises(ConfigError) as caught:
        check_startup(config)
    assert str(caught.value).startswith("OUTREACH_DOMAIN_LIMITS") and "\n" not in str(caught.value)
    check_startup(Config(secret_key=LONG, domain_limits="gmail.com=20/s;*=50/s"))
    check_startup(Config(secret_key=LONG, domain_limits="gmail.com=20/s,5c;yahoo.com=3c;*=50/s"))


@pytest.mark.parametrize("env, setting", [
    ({"OUTREACH_DOMAIN_LIMITS": "gmail.com=fast"}, "OUTREACH_DOMAIN_LIMITS"),
    ({"OUTREACH_DOMAIN_LIMITS": "gmail.com=20/s,many"}, "OUTREACH_DOMAIN_LIMITS"),
    ({"OUTREACH_DKIM_DOMAIN": "outreach.example", "OUTREACH_DKIM_SELECTOR": "s1",
      "OUTREACH_DKIM_PRIVATE_KEY_FILE": "/nonexistent/k.pem"}, "OUTREACH_DKIM_PRIVATE_KEY_FILE"),
    ({"OUTREACH_SMTP_URLS": "smtp://h.example:x"}, "OUTREACH_SMTP_URLS"),
])
def test_the_worker_refuses_bad_deliverability_settings_with_one_line(env: dict[str, str],
                                                                       setting: str) -> None:
    env = {"OUTREACH_REDIS_URL": "redis://127.0.0.1:1/0", "OUTREACH_SECRET_KEY": LONG, **env}
    result = CliRunner().invoke(main, ["worker"], env=env)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + setting), result.output
