"""Every Redis key name outreach uses is built here, and nowhere else.

All keys carry the same hash tag (``{prefix}``) so that Lua scripts and MULTI
blocks touching several of them stay valid on Redis Cluster (one slot per
installation; shard by installation prefix).

The names live in one mixin per domain (``outreach/store/names/``); ``Keys`` joins them.
"""

from __future__ import annotations

from outreach.store.names.campaigns import CampaignKeys
from outreach.store.names.journeys import JourneyKeys
from outreach.store.names.people import PeopleKeys
from outreach.store.names.platform import PlatformKeys
from outreach.store.names.sales import SalesKeys
from outreach.store.names.segments import SegmentKeys


class Keys(PeopleKeys, PlatformKeys, CampaignKeys, SalesKeys, SegmentKeys, JourneyKeys):
    def __init__(self, prefix: str = "outreach") -> None:
        self.tag = "{" + prefix + "}"
