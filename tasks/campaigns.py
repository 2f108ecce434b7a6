"""Campaign dispatch and sending (see outreach.services.campaigns)."""
