"""outreach: registrations in, deduplicated lists, exactly-once campaigns, leads to deals.

The packages, lowest first (imports run one way; ``pyproject.toml``'s import-linter contract
checks it): the ground floor (``config``, ``errors``, ``vocabulary``, ``normalize``, ``tokens``,
``paths``), ``store``, ``mail``, ``platform``, ``people``, ``campaigns``, ``sales``,
``journeys``, ``privacy``, ``schemas``, then ``web`` and ``tasks``, ``app`` and ``cli``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from outreach.config import Config

__version__ = "0.1.0"


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """``gunicorn 'outreach:create_app()'``: the application factory of ``outreach.app``."""
    from outreach.app import create_app as factory

    return factory(config)
