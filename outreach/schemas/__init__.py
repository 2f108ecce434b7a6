"""HTTP shapes (marshmallow): what the API reads and writes, and its OpenAPI document."""
