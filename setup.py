"""The package list (pyproject.toml has the rest): find_packages for the code, and the card's
top-level ``templates/`` mapped into the wheel as ``outreach/templates``."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["outreach", "outreach.*", "tasks", "tasks.*"]),
              "outreach.templates"],
    package_dir={"outreach.templates": "templates"},
)
