"""Marshmallow: HTTP shapes and OpenAPI (what the API and the forms take and give)."""
