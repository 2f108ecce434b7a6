"""Lead conversion (see outreach.services.conversion)."""
