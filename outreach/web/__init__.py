"""The HTTP faces: api/ (JSON v1), public/ (forms, tracking links, provider hooks, confirm), console/."""
