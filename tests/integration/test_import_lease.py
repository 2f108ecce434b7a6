"""An import whose worker died mid-run (left ``running``) is run again by the redelivered
task once its lease has expired: real Redis, a real `outreach worker`."""

from __future__ import annotations

import io

import pytest

from outreach.people.imports import jobs as imports

from .conftest import wait_for

pytestmark = pytest.mark.integration

FILE = b"Email,First Name\nann@example.com,Ann\nbob@example.com,Bob\nann@example.com,Ann\n"


def test_a_redelivered_import_reruns_a_job_whose_lease_expired(make_service):
    service = make_service(import_lease_seconds=2)
    # uploaded while no worker runs: the task waits in the broker
    response = service.client.post("/api/v1/imports", headers=service.auth, data={
        "file": (io.BytesIO(FILE), "x.csv"), "type": "leads", "asset": "fair"},
        content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    import_id = response.get_json()["id"]
    job_key = service.store.keys.import_job(import_id)
    # as a worker that took it and was SIGKILLed leaves it: running, its lease still held
    assert imports.claim_job(service.store, service.config, import_id)
    assert service.get(f"/api/v1/imports/{import_id}")["status"] == "running"
    service.start_worker()
    # the task (as redelivered) finds the lease held, waits for it, then runs the job
    job = wait_for(lambda: (j := service.get(f"/api/v1/imports/{import_id}"))["status"]
                   == "done" and j, timeout=60, message="the import rerun")
    assert {k: job[k] for k in ("rows", "created", "updated", "unchanged", "failed")} == {
        "rows": 3, "created": 2, "updated": 0, "unchanged": 1, "failed": 0}
    assert service.store.r.hget(job_key, "runs") == "2"
    assert sorted(lead["email"] for lead in service.all_items("/api/v1/leads")) == [
        "ann@example.com", "bob@example.com"]
