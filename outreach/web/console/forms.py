"""Forms: each asset's hosted form link and the copy-paste embed snippet."""

from __future__ import annotations

from typing import Any

from flask import request

from outreach.people import assets
from outreach.web.console.base import bp, config, render, requires, store


@bp.route("/forms")
@requires("lists")
def forms_page() -> Any:
    from outreach.web.public.pages import snippet

    found = assets.find_assets(store(), limit=25, cursor=request.args.get("cursor") or None,
                               base_url=config().base_url)
    rows = [{"asset": asset, "snippet": snippet(asset)} for asset in found["items"]]
    return render("forms.html", rows=rows, pairs=found)
