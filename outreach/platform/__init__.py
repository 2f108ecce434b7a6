"""Platform: users, API keys and roles, outbound webhooks, health, paging (one cursor walker), refs."""
