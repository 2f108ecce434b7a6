"""Where the files shipped inside the package (templates, static files) live.

Resolved through ``importlib.resources`` from the installed package, never from a
source checkout, so a plain ``pip install .`` finds them from any working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGE_DIR = Path(str(files("outreach")))
TEMPLATES_DIR = PACKAGE_DIR / "templates"
EMAIL_TEMPLATES_DIR = TEMPLATES_DIR / "email"
PAGE_TEMPLATES_DIR = TEMPLATES_DIR / "pages"
STATIC_DIR = PACKAGE_DIR / "static"
