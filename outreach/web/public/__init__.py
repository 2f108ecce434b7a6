"""Public pages and links: hosted forms, tracking links, provider hooks, double opt-in confirm."""
