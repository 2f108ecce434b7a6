"""Generated requests against the service's own ``/api/openapi.json`` (schemathesis), with a
valid API key, on the Flask app (WSGI) over the in-process fake Redis.

Every documented operation gets a bounded number of generated cases; every response must
conform to the document (status code documented, body valid for its schema, content type)
and none may be a 5xx.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import outreach
from outreach.platform.apikeys import create_api_key

APP = outreach.create_app({"redis_url": "", "key_prefix": f"schemathesis{os.getpid()}",
                           "intake_rate_limit": "0", "broker_url": "memory://",
                           "ingest_kick_ms": 24 * 3600 * 1000})
APP.extensions["outreach.kick_ingest"] = lambda: None
AUTH = {"Authorization": f"Bearer {create_api_key(APP.extensions['outreach.store'], 'schemathesis')}"}
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", APP)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case) -> None:
    response = case.call(headers=AUTH)
    case.validate_response(response, checks=CHECKS)
