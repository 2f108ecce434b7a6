"""The JSON API v1: a module per resource. Handlers only: parse with a schema, call one
service, dump with a schema."""
