"""Start-up checks every entry point runs before it serves anything.

``create_app()`` calls :func:`check_startup` (``outreach dev`` marks its config as dev and
is exempt), so the gunicorn workers, ``outreach worker``, ``outreach beat``,
``outreach api-key create`` and any other command that builds the app refuse to start on a
forgeable secret. Commands that do not build an app call :func:`check_startup` themselves.
Every failure is a :class:`~outreach.config.ConfigError` whose message is one line naming
the setting; the CLI (``outreach.cli.main``) and gunicorn print just that line and exit non-zero.
"""

from __future__ import annotations

import sys

from outreach.config import DEV_SECRET_KEY, MIN_SECRET_KEY_BYTES, Config, ConfigError

_HOW = "set it to a random value of at least 32 bytes, e.g. `python -c 'import secrets; " \
       "print(secrets.token_urlsafe(32))'`"


def check_startup(config: Config) -> None:
    """Raise ConfigError when this config must not serve (the secret: outside ``outreach dev``)."""
    check_deliverability(config)
    if is_dev(config):
        return
    secret = config.secret_key
    if secret == DEV_SECRET_KEY:
        raise ConfigError("OUTREACH_SECRET_KEY is the built-in development value (tokens would be "
                          f"forgeable): {_HOW}")
    if len(secret.encode()) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(f"OUTREACH_SECRET_KEY is {len(secret.encode())} bytes, shorter than "
                          f"{MIN_SECRET_KEY_BYTES} (tokens would be forgeable): {_HOW}")


_DKIM = {"dkim_domain": "OUTREACH_DKIM_DOMAIN", "dkim_selector": "OUTREACH_DKIM_SELECTOR",
         "dkim_private_key_file": "OUTREACH_DKIM_PRIVATE_KEY_FILE"}


def check_deliverability(config: Config) -> None:
    """DKIM and per-domain limits that cannot work refuse the start, not the first campaign
    (which would stay ``sending`` with every message failing): a DKIM setting without the
    other two, an unreadable, malformed or weak key (RSA < 2048 bits), a bad selector or
    domain, a malformed ``OUTREACH_DOMAIN_LIMITS``."""
    from outreach.campaigns import pacing
    from outreach.mail import dkim

    given = {name for name in _DKIM if getattr(config, name)}
    if given and len(given) < len(_DKIM):
        missing = ", ".join(_DKIM[name] for name in _DKIM if name not in given)
        raise ConfigError(f"{missing} not set: DKIM signing needs "
                          "OUTREACH_DKIM_DOMAIN, OUTREACH_DKIM_SELECTOR and "
                          "OUTREACH_DKIM_PRIVATE_KEY_FILE together")
    try:
        dkim.from_config(config)
    except dkim.DkimError as exc:
        value = {v: getattr(config, k) for k, v in _DKIM.items()}[exc.setting]
        raise ConfigError(f"{exc.setting}={value!r}: {exc}") from None
    pacing.parse_limits(config.domain_limits)  # ConfigError naming OUTREACH_DOMAIN_LIMITS


def dev_config(config: Config) -> Config:
    """``config`` marked as ``outreach dev``'s (exempt from the secret check); not settable by env."""
    return config.with_overrides(dev_mode=True)


def is_dev(config: Config) -> bool:
    return bool(config.extra.get("dev_mode"))


def for_gunicorn(exc: ConfigError) -> BaseException:
    """What the app factory raises for ``exc``: under gunicorn, the one line on stderr and
    ``SystemExit(4)``; elsewhere the ConfigError itself.

    Gunicorn logs any other exception from the factory with a traceback. With ``--preload``
    the master loads the app, and SystemExit ends it before it logs anything; without, each
    worker exits 4 (gunicorn's "App failed to load" status) and the master halts with that
    status instead of respawning workers. (With several workers and no --preload, gunicorn
    27 may add its own HaltServer traceback when two workers fail at once: the image runs
    with --preload.)
    """
    if not _under_gunicorn():
        return exc
    print(f"outreach: error: {exc}", file=sys.stderr, flush=True)
    return SystemExit(4)


def _under_gunicorn() -> bool:
    argv0 = sys.argv[0] if sys.argv else ""
    return "gunicorn.arbiter" in sys.modules and "gunicorn" in argv0.replace("\\", "/").lower()
