"""The suite runs against the installed wheel (``./test.sh``), never the source checkout."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

import outreach
import tasks
from outreach import paths

CHECKOUT = Path(__file__).resolve().parent.parent

installed_only = pytest.mark.skipif(not os.environ.get("OUTREACH_TEST_INSTALLED"),
                                    reason="set by ./test.sh, which tests the installed wheel")


@installed_only
def test_the_package_under_test_is_the_installed_one() -> None:
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    for module in (outreach, tasks):
        location = Path(module.__file__).resolve()
        assert site_packages in location.parents, f"{module.__name__} imported from {location}"


def test_run_time_files_ship_inside_the_package() -> None:
    package = Path(outreach.__file__).resolve().parent
    assert paths.TEMPLATES_DIR.resolve().parent == package
    assert (paths.PAGE_TEMPLATES_DIR / "unsubscribe.html").is_file()
    assert sorted(p.name for p in paths.EMAIL_TEMPLATES_DIR.glob("*.html"))
    assert (package / "store" / "lua" / "ingest.lua").is_file()
