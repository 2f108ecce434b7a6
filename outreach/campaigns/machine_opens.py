"""Machine opens: the one place that says which opens and clicks no person made.

Three rules, all counted as ``opened_machine`` and never as ``opened``:

- **Too soon.** An open within ``machine_open_seconds`` (``OUTREACH_MACHINE_OPEN_SECONDS``)
  of the message's delivery: mailbox providers and security gateways fetch the pixel as the
  message arrives. ``track_event.lua`` reads the delivery time from the ledger entry
  ``S|<ref>|<at>`` that ``finish_send.lua`` writes, so the rule runs where the open is counted.
- **A known agent.** A privacy proxy or a link scanner that says what it is in its user agent
  (``is_machine_agent``). Apple Mail Privacy Protection prefetches every image through a proxy
  whose user agent is a bare ``Mozilla/5.0``. Gmail's image proxy (``GoogleImageProxy``) and
  Yahoo's (``YahooMailProxy``) fetch when the person opens the message: their opens are human.
- **A link scanner.** Every link of a message clicked within ``SCANNER_BURST_SECONDS`` of the
  first click (a message with at least ``SCANNER_MIN_LINKS`` links; one click on a one-link
  message is what people do). ``track_event.lua`` detects it as the last link is clicked and
  turns what it had counted for that person in that campaign into machine activity: the
  human open and click leave ``opened``/``clicked`` (the open counts as ``opened_machine``),
  the links' counts and the hourly timeline lose those clicks and the lead's score loses what
  they gave. Scanners that look like browsers are caught by this rule and the first.

A human click counts as a human open too (images may be blocked).
"""

from __future__ import annotations

import re

SCANNER_BURST_SECONDS = 1.0
SCANNER_MIN_LINKS = 2

# fetch when the person opens the message: human, whatever else the string says
_HUMAN_PROXIES = re.compile(r"GoogleImageProxy|YahooMailProxy", re.I)
# say what they are: privacy proxies, security gateways, link scanners, HTTP libraries
_MACHINE_AGENTS = re.compile(
    r"BingPreview|Google-Safety|Barracuda|Mimecast|Proofpoint|URLDefense|SafeLinks"
    r"|Trend ?Micro|Forcepoint|IronPort|FortiMail|Sophos|Symantec|McAfee"
    r"|Googlebot|bingbot|HeadlessChrome|PhantomJS|python-requests|python-urllib|aiohttp"
    r"|Go-http-client|okhttp|libwww-perl|^curl/|^Wget/|^Java/", re.I)


def is_machine_agent(user_agent: str | None) -> bool:
    """Whether a user agent is a privacy proxy or a scanner rather than a person's mail
    client. No user agent at all: a machine (every mail client sends one)."""
    agent = (user_agent or "").strip()
    if not agent:
        return True
    if _HUMAN_PROXIES.search(agent):
        return False
    if agent == "Mozilla/5.0":  # Apple Mail Privacy Protection's prefetch proxy
        return True
    return bool(_MACHINE_AGENTS.search(agent))
