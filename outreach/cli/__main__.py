"""``python -m outreach.cli``: the ``outreach`` command."""

from outreach.cli.main import main

main()
