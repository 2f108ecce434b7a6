"""CSV import: messy files, exact outcomes and error reports, one path with intake; exports."""

from __future__ import annotations

import csv
import io
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.people.imports.csvfile import NotCsv, records
from outreach.people.imports.run import Options, run_import


def _import(env, content: bytes, **options):
    return run_import(env.store, env.config, io.BytesIO(content), Options(**options))


def _leads(env) -> dict[str, dict]:
    return {lead["email"]: lead for lead in env.get("/api/v1/leads?limit=500").get_json()["items"]}


MESSY = (
    "\ufeffE-mail;First Name;Company;Notes;Opt In\r\n"
    "ann@example.com;Ann;Acme;\"met at the booth;\nwants a demo\";yes\r\n"
    "not-an-address;Bob;X;;no\r\n"
    "\r\n"
    " ANN@Example.COM ;Ann;Acme;;yes\r\n"
    "boss@example.com;Boss;Big Corp;;no\r\n"
    "carl@example.org;Carl;\"Z; Co\";;\r\n"
    "dan@example.com;Dan;D;;yes;extra\r\n"
).encode("utf-8")


def test_a_messy_file_gives_exact_people_lists_and_errors(env) -> None:
    env.post("/api/v1/contacts", json={"email": "boss@example.com", "first_name": "Boss"})
    report = _import(env, MESSY, asset="expo-2026", kind="event", source="trade_show",
                     consent="column:Opt In")
    assert report.encoding == "utf-8-sig" and report.delimiter == ";"
    assert report.columns == {"E-mail": "email", "First Name": "first_name",
                              "Company": "company", "Opt In": "consent"}
    assert report.ignored == ["Notes"]
    # Ann again (another spelling, same values) is unchanged; the known contact is updated
    assert report.as_dict() == {"rows": 6, "created": 2, "updated": 1, "unchanged": 1,
                                "failed": 2}
    # the header is line 1; the first record spans lines 2-3; a blank line is no record
    assert report.errors == [(4, "Not a valid email address.", "email"),
                             (9, "6 cells for 5 columns", "")]
    leads = _leads(env)
    assert sorted(leads) == ["ann@example.com", "carl@example.org"]  # no duplicate Ann
    assert leads["ann@example.com"]["consent_status"] == "given"
    assert leads["ann@example.com"]["source"] == "trade_show"
    assert leads["carl@example.org"]["company"] == "Z; Co"
    assert leads["carl@example.org"]["consent"] is False
    asset = env.get("/api/v1/assets/expo-2026").get_json()
    members = env.get(f"/api/v1/lists/{asset['lead_list_id']}/members").get_json()["items"]
    assert sorted(m["email"] for m in members) == ["ann@example.com", "carl@example.org"]
    contacts = env.get(f"/api/v1/lists/{asset['contact_list_id']}/members").get_json()["items"]
    assert [c["email"] for c in contacts] == ["boss@example.com"]  # the known contact
    assert env.get("/api/v1/contacts").get_json()["items"][0]["email"] == "boss@example.com"
    ann = leads["ann@example.com"]["id"]
    items = env.get(f"/api/v1/leads/{ann}/consent").get_json()["items"]
    assert [(i["how"], i["status"]) for i in items] == [("import", "given")]


def test_reimporting_the_same_file_changes_nothing(env) -> None:
    content = b"Email,First Name\na@example.com,Ann\nb@example.com,Bea\n"
    first = _import(env, content, asset="fair")
    assert first.as_dict() == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0,
                               "failed": 0}
    before = _leads(env)
    again = _import(env, content, asset="fair")
    assert again.as_dict() == {"rows": 2, "created": 0, "updated": 0, "unchanged": 2,
                               "failed": 0}
    assert _leads(env) == before  # not even updated_at or the history moved
    changed = _import(env, b"Email,First Name\na@example.com,Annie\n", asset="fair")
    assert changed.updated == 1
    assert _leads(env)["a@example.com"]["first_name"] == "Annie"


def test_a_row_is_a_registration_like_intake(env) -> None:
    """Same dedup and merge rules: an address imported for an asset and then registered on
    the website stays one lead; the import counts as a repeat registration for a new asset."""
    env.registered("ann@example.com", first_name="Ann", asset="webinar")
    report = _import(env, b"email,company\nANN@example.com,Acme\n", asset="fair")
    assert report.updated == 1 and report.created == 0
    lead = _leads(env)["ann@example.com"]
    assert lead["first_name"] == "Ann" and lead["company"] == "Acme"
    assert sorted(r["asset"] for r in lead["registrations"]) == ["fair", "webinar"]
    assert lead["score"] == env.config.score_repeat_registration
    assert lead["source"] == "web_form" and lead["latest_source"] == "import"


@pytest.mark.parametrize("content, encoding, name", [
    ("email;first_name\nzoe@example.com;Zoë\n".encode("utf-16"), "utf-16", "Zoë"),
    ("email;first_name\nzoe@example.com;Zoë\n".encode("utf-16-le"), "utf-16-le", "Zoë"),
    ("email\tfirst_name\nzoe@example.com\tZoë 😀\n".encode("utf-16-be"), "utf-16-be", "Zoë 😀"),
    ("email,first_name\nzoe@example.com,Zoë\n".encode("latin-1"), "latin-1 (windows-1252)",
     "Zoë"),
    ("email\tFirst Name\nzoe@example.com\tZoë\n".encode(), "utf-8", "Zoë"),
    ("Email Address,Firstname\r\nzoe@example.com,Zoë\r\n".encode("utf-8-sig"), "utf-8-sig",
     "Zoë"),
])
def test_encodings_and_delimiters(env, content, encoding, name) -> None:
    report = _import(env, content, asset="fair")
    assert report.encoding == encoding and report.created == 1, report
    assert _leads(env)["zoe@example.com"]["first_name"] == name


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b"name,company\nAnn,Acme\n", "no email column"),
    (b"\n\nemail\n", "header"),
])
def test_not_a_readable_csv(env, content, message) -> None:
    with pytest.raises(NotCsv, match=message):
        _import(env, content, asset="fair")
    assert _leads(env) == {}


def test_utf8_that_breaks_later_is_a_clear_failure(env) -> None:
    content = b"email\n" + b"a@example.com\n" * 8000 + b"\xff\xfe@example.com\n"
    with pytest.raises(NotCsv, match="not utf-8"):
        _import(env, content, asset="fair")


def test_explicit_mapping_and_dry_run(env) -> None:
    content = b"Courriel perso,Boite\nann@example.com,Acme\nbob@example.com,B\n"
    with pytest.raises(NotCsv):
        _import(env, content, asset="fair")
    dry = _import(env, content, asset="fair", mapping={"Courriel perso": "email",
                                                        "Boite": "company"}, dry_run=True)
    assert dry.as_dict() == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0, "failed": 0}
    assert _leads(env) == {} and env.get("/api/v1/assets").get_json()["items"] == []
    real = _import(env, content, asset="fair", mapping={"Courriel perso": "email",
                                                         "Boite": "company"})
    assert real.created == 2 and _leads(env)["ann@example.com"]["company"] == "Acme"


def test_a_dry_run_predicts_the_real_import(env) -> None:
    first = b"email,first_name,company,consent\nann@example.com,Ann,Acme,yes\nbob@example.com,Bob,B,no\n"
    _import(env, first, asset="fair", consent="column:consent")
    again = (b"email,first_name,company,consent\n"
             b"ANN@example.com , Ann ,Acme,yes\n"  # the same person and values: unchanged
             b"bob@example.com,Bob,Bee,no\n"  # a new company: updated
             b"bob@example.com,Bob,Bee,yes\n"  # consent given now: updated
             b"cy@example.com,Cy,C,no\n"  # new: created
             b"dee@example.com,,D,no\n")  # new, but a lead already (another asset): updated
    _import(env, b"email\ndee@example.com\n", asset="other")
    dry = _import(env, again, asset="fair", consent="column:consent", dry_run=True)
    real = _import(env, again, asset="fair", consent="column:consent")
    assert dry.as_dict() == real.as_dict() == {"rows": 5, "created": 1, "updated": 3,
                                               "unchanged": 1, "failed": 0}
    # once applied, the same file changes nothing, and its dry run says so
    dry = _import(env, again, asset="fair", consent="column:consent", dry_run=True)
    real = _import(env, again, asset="fair", consent="column:consent")
    assert dry.as_dict() == real.as_dict()
    assert real.unchanged == 5


def test_bad_options_are_422(env) -> None:
    from outreach.errors import Invalid

    for options in ({"type": "people"}, {"kind": "webinar"}, {"source": "tv"},
                    {"consent": "maybe"}, {"asset": "Bad Slug"}, {"mapping": {"A": "password"}}):
        with pytest.raises(Invalid):
            _import(env, b"email\na@example.com\n", **options)


def test_import_contacts(env) -> None:
    env.post("/api/v1/contacts", json={"email": "old@example.com", "first_name": "Old"})
    content = b"Email,First Name,Company\nold@example.com,Old,\nnew@example.com,New,N\nbad,,\n"
    report = _import(env, content, type="contacts", asset="partner-day", kind="event")
    assert report.as_dict() == {"rows": 3, "created": 1, "updated": 1, "unchanged": 0,
                                "failed": 1}
    again = _import(env, content, type="contacts", asset="partner-day", kind="event")
    assert again.as_dict() == {"rows": 3, "created": 0, "updated": 0, "unchanged": 2,
                               "failed": 1}
    contacts = {c["email"] for c in env.get("/api/v1/contacts").get_json()["items"]}
    assert contacts == {"old@example.com", "new@example.com"}
    assert _leads(env) == {}
    asset = env.get("/api/v1/assets/partner-day").get_json()
    members = env.get(f"/api/v1/lists/{asset['contact_list_id']}/members").get_json()["items"]
    assert sorted(m["email"] for m in members) == ["new@example.com", "old@example.com"]


# ---------------------------------------------------------------- properties

_cell = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r"), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_cell, min_size=2, max_size=2), max_size=12),
       st.sampled_from([",", ";", "\t"]))
def test_line_numbers_are_where_records_start(rows, delimiter) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["email", "name"])
    expected = []
    line = 2
    for row in rows:
        writer.writerow(row)
        if any(c.strip() for c in row):  # a record of blank cells is no data record
            expected.append((line, row))
        line = buffer.getvalue().count("\n") + 1
    got = list(records(io.StringIO(buffer.getvalue(), newline="")))
    assert got[0] == (0, [delimiter])
    assert got[1] == (1, ["email", "name"])
    assert got[2:] == expected


_email = st.sampled_from(["a@example.com", "A@Example.com", " b@example.com", "b@EXAMPLE.com",
                          "c@example.org", "not-an-address", "", "d@exa mple.com"])
_name = st.sampled_from(["", "Ann", "Bob", "x" * 201, "=cmd()", "multi\nline"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_email, _name), max_size=15))
def test_every_row_is_counted_once(make_env, rows) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["Email", "First Name"])
    writer.writerows(rows)
    content = buffer.getvalue().encode()
    with make_env() as env:
        report = _import(env, content, asset="fair")
        assert report.created + report.updated + report.unchanged + report.failed == report.rows
        assert report.rows == sum(1 for row in rows if any(c.strip() for c in row))
        assert len({line for line, _, _ in report.errors}) == report.failed
        leads = _leads(env)
        assert len(leads) == report.created  # never a duplicate
        again = _import(env, content, asset="fair")
        assert again.rows == report.rows and again.created == 0
        assert again.failed == report.failed
        assert sorted(_leads(env)) == sorted(leads)


# ---------------------------------------------------------------- CLI and API

@pytest.fixture
def cli(env, monkeypatch):
    import outreach.cli.imports as module

    monkeypatch.setattr(module, "_store_and_config", lambda: (env.store, env.config))
    from outreach.cli.main import main

    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))


def test_cli_import_summary_and_exit_codes(cli, env, tmp_path) -> None:
    good = tmp_path / "leads.csv"
    good.write_bytes(MESSY)
    result = cli("import", "leads", str(good), "--asset", "expo", "--consent", "column:Opt In",
                 "--errors", str(tmp_path / "errors.csv"))
    assert result.exit_code == 0, result.output
    assert "6 rows: 3 created, 0 updated, 1 unchanged, 2 failed" in result.output
    assert "line 4: Not a valid email address. (email)" in result.output
    assert (tmp_path / "errors.csv").read_text().splitlines() == [
        "line,reason,field", "4,Not a valid email address.,email", "9,6 cells for 5 columns,"]
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    result = cli("import", "leads", str(binary))
    assert result.exit_code == 2 and "not a readable CSV" in result.output
    assert cli("import", "leads", str(tmp_path / "missing.csv")).exit_code == 2
    dry = cli("import", "leads", str(good), "--asset", "other", "--dry-run")
    assert dry.exit_code == 0 and "Dry run (nothing written)" in dry.output


def test_cli_export_writes_the_same_csv(cli, env, tmp_path) -> None:
    env.registered("ann@example.com", first_name="=HYPERLINK(1)")
    out = tmp_path / "leads.csv"
    assert cli("export", "leads", "-o", str(out)).exit_code == 0
    assert out.read_bytes() == env.get("/api/v1/leads.csv").get_data()
    assert cli("export", "members", "nope").exit_code == 1


def test_import_api(env, check_error) -> None:
    from outreach.people.imports.jobs import run_job

    queued = []
    env.app.extensions["outreach.import_jobs"] = queued.append
    response = env.client.post("/api/v1/imports", headers=env.auth, data={
        "file": (io.BytesIO(MESSY), "expo.csv"), "type": "leads", "asset": "expo",
        "consent": "column:Opt In", "source": "trade_show"}, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    import_id = response.get_json()["id"]
    assert queued == [import_id]
    job = env.get(f"/api/v1/imports/{import_id}").get_json()
    assert job["status"] == "queued" and job["rows"] == 0
    run_job(env.store, env.config, import_id)
    job = env.get(f"/api/v1/imports/{import_id}").get_json()
    assert {k: job[k] for k in ("status", "rows", "created", "updated", "unchanged", "failed",
                                "progress")} == {
        "status": "done", "rows": 6, "created": 3, "updated": 0, "unchanged": 1, "failed": 2,
        "progress": 1.0}
    errors = env.client.get(job["errors_url"].replace("http://localhost:8000", ""),
                            headers=env.auth)
    assert errors.mimetype == "text/csv"
    assert errors.get_data(as_text=True).splitlines() == [
        "line,reason,field", "4,Not a valid email address.,email", "9,6 cells for 5 columns,"]
    # run again (a redelivered task): nothing happens twice
    assert run_job(env.store, env.config, import_id)["created"] == 3
    # a file that is not CSV: the job fails with the reason
    bad = env.client.post("/api/v1/imports", headers=env.auth, data={
        "file": (io.BytesIO(b"\x00\x01\x02"), "x.csv"), "type": "leads"},
        content_type="multipart/form-data").get_json()["id"]
    failed = run_job(env.store, env.config, bad)
    assert failed["status"] == "failed" and "binary" in failed["error"]
    check_error(env.client.post("/api/v1/imports", headers=env.auth, data={"type": "leads"},
                                content_type="multipart/form-data"), 422)
    check_error(env.client.post("/api/v1/imports", headers=env.auth, data={
        "file": (io.BytesIO(MESSY), "x.csv"), "type": "people"},
        content_type="multipart/form-data"), 422)
    check_error(env.post("/api/v1/imports", json={"type": "leads"}), 415)
    check_error(env.client.post("/api/v1/imports", data={}), 401)
    check_error(env.get("/api/v1/imports/nope"), 404)
    check_error(env.get("/api/v1/imports/nope/errors.csv"), 404)


def test_exports_stream_csv_with_a_formula_guard(cenv, check_error) -> None:
    list_id = cenv.leads("ann@example.com", "bob@example.com", first_name="=SUM(A1)",
                         company="+Acme", job_title="@boss")
    members = cenv.get(f"/api/v1/lists/{list_id}/members.csv")
    assert members.status_code == 200 and members.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(members.get_data(as_text=True))))
    assert sorted(r["email"] for r in rows) == ["ann@example.com", "bob@example.com"]
    assert rows[0]["first_name"] == "'=SUM(A1)" and rows[0]["company"] == "'+Acme"
    assert rows[0]["job_title"] == "'@boss"
    leads = cenv.get("/api/v1/leads.csv", query_string={"email": "bob@example.com"})
    (bob,) = list(csv.DictReader(io.StringIO(leads.get_data(as_text=True))))
    assert bob["email"] == "bob@example.com" and bob["consent"] == "true"
    campaign_id = cenv.run(cenv.launched([list_id]))["id"]
    sent = cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients.csv?status=sent")
    rows = list(csv.DictReader(io.StringIO(sent.get_data(as_text=True))))
    assert sorted(r["email"] for r in rows) == ["ann@example.com", "bob@example.com"]
    assert {r["status"] for r in rows} == {"sent"}
    failed = cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients.csv?status=failed")
    assert failed.get_data(as_text=True).splitlines() == ["email,person,status,at,error"]
    check_error(cenv.get("/api/v1/lists/nope/members.csv"), 404)
    check_error(cenv.get("/api/v1/campaigns/nope/recipients.csv"), 404)
    check_error(cenv.get("/api/v1/leads.csv?status=lost"), 422)
    check_error(cenv.client.get("/api/v1/leads.csv"), 401)


def test_export_pages_through_many(env) -> None:
    rows = "".join(f"p{i}@example.com,P{i}\n" for i in range(1234))
    assert _import(env, f"email,first_name\n{rows}".encode(), asset="big").created == 1234
    body = env.get("/api/v1/leads.csv").get_data(as_text=True)
    assert len(body.splitlines()) == 1235
    assert len({line.split(",")[1] for line in body.splitlines()[1:]}) == 1234


def test_a_job_whose_worker_died_is_rerun_once_its_lease_expires(env) -> None:
    from outreach.people.imports import jobs as imports

    env.app.extensions["outreach.import_jobs"] = lambda import_id: None
    response = env.client.post("/api/v1/imports", headers=env.auth, data={
        "file": (io.BytesIO(MESSY), "expo.csv"), "type": "leads", "asset": "expo",
        "consent": "column:Opt In"}, content_type="multipart/form-data")
    import_id = response.get_json()["id"]
    key = env.store.keys.import_job(import_id)
    # a worker took it and died after applying part of it (no heartbeat since)
    now = time.time()
    assert imports.claim_job(env.store, env.config, import_id, now=now)
    assert env.store.r.hget(key, "status") == "running"
    assert float(env.store.r.hget(key, "lease_until")) == now + env.config.import_lease_seconds
    _import(env, b"E-mail;First Name\nann@example.com;Ann\n", asset="expo")  # what it applied
    # redelivered while the lease holds: left alone, the task is told how long to wait
    assert imports.run_job(env.store, env.config, import_id)["status"] == "running"
    assert 0 < imports.lease_left(env.store, import_id) <= env.config.import_lease_seconds
    assert not imports.claim_job(env.store, env.config, import_id, now=now + 1)
    # once the lease has expired, the redelivered task runs it to the end; the same dedup
    # as intake makes the rows applied before count as known people, never duplicates
    env.store.r.hset(key, "lease_until", now - 1)
    job = imports.run_job(env.store, env.config, import_id)
    assert job["status"] == "done" and job["rows"] == 6 and job["failed"] == 2
    assert job["created"] + job["updated"] + job["unchanged"] == 4
    assert env.store.r.hget(key, "runs") == "2"
    assert imports.lease_left(env.store, import_id) == 0
    emails = [lead["email"] for lead in env.get("/api/v1/leads").get_json()["items"]]
    assert len(emails) == len(set(emails)) == 3
    # finished: a later redelivery changes nothing
    assert not imports.claim_job(env.store, env.config, import_id, now=now + 10_000)


def test_the_lease_is_renewed_with_every_batch(env, monkeypatch) -> None:
    from outreach.people.imports import jobs as imports
    from outreach.people.imports import run

    monkeypatch.setattr(run, "BATCH", 2)
    env.app.extensions["outreach.import_jobs"] = lambda import_id: None
    rows = "".join(f"p{i}@example.com\n" for i in range(7))
    import_id = env.client.post("/api/v1/imports", headers=env.auth, data={
        "file": (io.BytesIO(f"email\n{rows}".encode()), "x.csv"), "type": "leads"},
        content_type="multipart/form-data").get_json()["id"]
    key = env.store.keys.import_job(import_id)
    leases = []
    real_hset = env.store.r.hset

    def spy(name, *args, **kwargs):
        mapping = kwargs.get("mapping") or {}
        if name == key and "lease_until" in mapping:
            leases.append(mapping["lease_until"])
        return real_hset(name, *args, **kwargs)

    monkeypatch.setattr(env.store.r, "hset", spy)
    assert imports.run_job(env.store, env.config, import_id)["created"] == 7
    assert len(leases) >= 4  # the claim, then a heartbeat per batch of 2
    assert leases == sorted(leases)
