"""The generated OpenAPI document, the error shape for framework errors, and API keys."""

from __future__ import annotations

import hashlib
import re

import pytest

from outreach.platform.apikeys import api_key_identity, create_api_key, revoke_api_key_by_id

# Every path of API.md; the ones this build serves must be in the spec.
API_MD_PATHS = {
    "/api/v1/registrations": {"post"},
    "/api/v1/registrations/{id}": {"get"},
    "/api/v1/leads": {"get"},
    "/api/v1/leads/{id}": {"get", "patch"},
    "/api/v1/leads/{id}/qualify": {"post"},
    "/api/v1/leads/{id}/disqualify": {"post"},
    "/api/v1/contacts": {"get", "post"},
    "/api/v1/contacts/{id}": {"get"},
    "/api/v1/accounts": {"get"},
    "/api/v1/accounts/{id}": {"get"},
    "/api/v1/opportunities": {"get"},
    "/api/v1/opportunities/{id}": {"get", "patch"},
    "/api/v1/people/{email}": {"delete"},
    "/api/v1/lists": {"get", "post"},
    "/api/v1/lists/{id}/members": {"get", "post"},
    "/api/v1/templates": {"post"},
    "/api/v1/campaigns": {"post"},
    "/api/v1/campaigns/{id}": {"get"},
    "/api/v1/campaigns/{id}/launch": {"post"},
    "/api/v1/campaigns/{id}/pause": {"post"},
    "/api/v1/campaigns/{id}/resume": {"post"},
    "/api/v1/campaigns/{id}/cancel": {"post"},
    "/api/v1/conversions/run": {"post"},
    "/api/v1/funnel": {"get"},
}
_PARAM = re.compile(r"\{[^}]+\}")


def _shape(path: str) -> str:
    return _PARAM.sub("{}", path)


def _served(app) -> dict[str, set[str]]:
    served: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?[^<>]+>", "{}", rule.rule)
        served.setdefault(path, set()).update(m.lower() for m in rule.methods or ())
    return served


def test_openapi_document(env) -> None:
    response = env.client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"]
    documented = {_shape(path): set(ops) for path, ops in spec["paths"].items()}
    served = _served(env.app)
    checked = 0
    for path, methods in API_MD_PATHS.items():
        for method in methods & served.get(_shape(path), set()):
            assert method in documented.get(_shape(path), set()), (method, path)
            checked += 1
    assert checked >= 12  # at least the foundation: intake, people, lists


def test_openapi_operations_describe_bodies_errors_and_auth(env) -> None:
    spec = env.client.get("/api/openapi.json").get_json()
    intake = spec["paths"]["/api/v1/registrations"]["post"]
    content = intake["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded",
            "multipart/form-data"} <= set(content)
    assert {"202", "413", "422", "429"} <= set(intake["responses"])
    assert "security" not in intake
    leads = spec["paths"]["/api/v1/leads"]["get"]
    assert leads["security"] == [{"bearer": []}]
    assert "401" in leads["responses"]
    names = {p["name"] for p in leads["parameters"]}
    assert names >= {"limit", "cursor", "list", "status", "email"}
    schemas = spec["components"]["schemas"]
    assert "Error" in schemas
    registration = next(s for name, s in schemas.items() if name.startswith("RegistrationIn"))
    assert {"kind", "asset", "email"} <= set(registration["required"])
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_openapi_is_stable_across_requests(env) -> None:
    assert env.client.get("/api/openapi.json").get_json() == \
        env.client.get("/api/openapi.json").get_json()


# --- framework errors in the one error shape -----------------------------------------


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/no/such/page", 404),
    ("get", "/api/v1/registrations", 405),
    ("put", "/api/v1/leads", 405),
])
def test_framework_errors_use_the_error_shape(env, check_error, method, path, status) -> None:
    check_error(getattr(env.client, method)(path, headers=env.auth), status)


def test_a_bug_is_a_500_in_the_error_shape(env, check_error, monkeypatch) -> None:
    from outreach.people import records as people

    def boom(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(people, "get_lead", boom)
    error = check_error(env.get("/api/v1/leads/ld1"), 500, "internal_error")
    assert "bug" not in error["message"]  # no internals leak


# --- API keys ------------------------------------------------------------------------


def test_api_keys_are_stored_hashed(env) -> None:
    key = create_api_key(env.store, "marketing")
    assert key.startswith("ok_") and len(key) > 30
    stored = env.store.r.hgetall(env.store.keys.api_keys)
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    assert all(key not in field and key not in value for field, value in stored.items())
    assert api_key_identity(env.store, key) is not None
    assert api_key_identity(env.store, key + "x") is None
    assert api_key_identity(env.store, "") is None
    key_id = hashlib.sha256(key.encode()).hexdigest()[:12]
    assert revoke_api_key_by_id(env.store, key_id) == "marketing"
    assert api_key_identity(env.store, key) is None
    assert revoke_api_key_by_id(env.store, key_id) is None


def test_keys_are_unique_and_each_works(env) -> None:
    keys = {create_api_key(env.store, f"k{i}") for i in range(5)}
    assert len(keys) == 5
    for key in keys:
        assert env.client.get("/api/v1/leads",
                              headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_path_parameters_with_fixed_values_carry_an_enum(env) -> None:
    spec = env.client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/{plural}/{record_id}/activities"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "path"}
    assert params["plural"] == {"type": "string",
                                "enum": ["accounts", "contacts", "leads", "opportunities"]}
    assert params["record_id"] == {"type": "string"}
