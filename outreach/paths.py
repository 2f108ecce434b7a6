"""Where the project's built-in Jinja2 templates (emails and pages) live."""

from __future__ import annotations

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
EMAIL_TEMPLATES_DIR = TEMPLATES_DIR / "email"
PAGE_TEMPLATES_DIR = TEMPLATES_DIR / "pages"
