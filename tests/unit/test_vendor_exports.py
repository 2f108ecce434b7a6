"""Imports from the tools marketers leave: CSV exports of Salesforce, HubSpot, Mailchimp,
Dynamics 365 and Zoho, with their documented column names and lead-source labels, import
without ``--map``, and a label never fails a row."""

from __future__ import annotations

import csv
import io

from outreach.people.imports.run import Options, run_import


def _csv(header: list[str], *rows: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _import(env, content: bytes, **options):
    return run_import(env.store, env.config, io.BytesIO(content), Options(**options))


def _lead(env, email: str) -> dict:
    (lead,) = env.get("/api/v1/leads", query_string={"email": email}).get_json()["items"]
    return lead


# Salesforce: Setup > Data Export / a Leads report ("Export Details")
SALESFORCE_LEADS = _csv(
    ["Lead ID", "First Name", "Last Name", "Title", "Company / Account", "Email", "Phone",
     "Mobile", "Street", "City", "State/Province", "Zip/Postal Code", "Country", "Lead Source",
     "Lead Status", "Rating"],
    ["00Q5e00000A1", "Ann", "Smith", "CTO", "Acme", "ann@acme.example", "+1 555 0100",
     "+1 555 0101", "1 Main St", "Springfield", "IL", "62701", "USA", "Trade Show",
     "Open - Not Contacted", "Hot"],
    ["00Q5e00000A2", "Bob", "Jones", "CFO", "Beta", "bob@beta.example", "", "", "", "", "", "",
     "", "Web", "Working", ""],
    ["00Q5e00000A3", "Cy", "Lee", "", "Gamma", "cy@gamma.example", "", "", "", "", "", "", "",
     "Partner Referral", "", ""],
    ["00Q5e00000A4", "Di", "Kay", "", "Delta", "di@delta.example", "", "", "", "", "", "", "",
     "Fax Blast 1998", "", ""],
)

# HubSpot: Contacts > Export (property labels as column names)
HUBSPOT_CONTACTS = _csv(
    ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Mobile Phone Number",
     "Street Address", "City", "State/Region", "Postal Code", "Country/Region", "Company Name",
     "Job Title", "Original Source", "Lifecycle Stage", "Time Zone"],
    ["101", "Eve", "Ng", "eve@hub.example", "555", "556", "2 Side St", "Boston",
     "Massachusetts", "02110", "United States", "Hub Inc", "VP", "Organic Search", "Lead",
     "America/New_York"],
    ["102", "Fay", "Oh", "fay@hub.example", "", "", "", "", "", "", "", "", "",
     "Offline Sources", "Lead", "(GMT-05:00) Eastern Time"],
)

# Dynamics 365: Leads > Export to Excel (saved as CSV)
DYNAMICS_LEADS = _csv(
    ["Topic", "First Name", "Last Name", "Job Title", "Business Phone", "Mobile Phone", "Email",
     "Company Name", "Street 1", "Street 2", "City", "State/Province", "ZIP/Postal Code",
     "Country/Region", "Lead Source"],
    ["Interested in CRM", "Gus", "Ray", "Buyer", "555 1", "555 2", "gus@dyn.example",
     "Dyn Ltd", "3 High St", "Floor 2", "Leeds", "West Yorkshire", "LS1 1AA", "UK",
     "Employee Referral"],
    ["Webinar follow-up", "Hal", "Ito", "", "", "", "hal@dyn.example", "Dyn Ltd", "", "", "",
     "", "", "", "Seminar"],
)

# Mailchimp: Audience > Export Audience (subscribed members)
MAILCHIMP_SUBSCRIBED = _csv(
    ["Email Address", "First Name", "Last Name", "Address", "Phone Number", "MEMBER_RATING",
     "OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF",
     "DSTOFF", "TIMEZONE", "CC", "REGION", "LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS"],
    ["ivy@chimp.example", "Ivy", "Po", "4 Low Rd", "555 3", "2", "2023-01-15 10:22:33",
     "203.0.113.7", "2023-01-15 10:25:01", "198.51.100.9", "", "", "1", "1",
     "Europe/Berlin", "DE", "BE", "2023-02-01 08:00:00", "123", "abc", "", ""],
    ["jon@chimp.example", "Jon", "Qi", "", "", "2", "2022-06-01 09:00:00", "203.0.113.8", "",
     "", "", "", "", "", "", "", "", "", "124", "abd", "", ""],
)

# Zoho CRM: Leads > Export
ZOHO_LEADS = _csv(
    ["Record Id", "First Name", "Last Name", "Email", "Phone", "Mobile", "Company",
     "Designation", "Lead Source", "Street", "City", "State", "Zip Code", "Country"],
    ["zcrm_1", "Kim", "Su", "kim@zoho.example", "555", "", "Zo", "Engineer", "Cold Call", "",
     "", "", "", "India"],
)


def test_a_salesforce_lead_export_imports_every_row(env) -> None:
    report = _import(env, SALESFORCE_LEADS, asset="sf")
    assert (report.created, report.failed) == (4, 0), report.errors
    ann = _lead(env, "ann@acme.example")
    assert ann["source"] == "trade_show"
    assert (ann["street"], ann["city"], ann["state"], ann["postal_code"], ann["country"]) == (
        "1 Main St", "Springfield", "IL", "62701", "USA")
    assert (ann["company"], ann["job_title"], ann["mobile_phone"]) == ("Acme", "CTO", "+1 555 0101")
    assert _lead(env, "bob@beta.example")["source"] == "web_form"
    assert _lead(env, "cy@gamma.example")["source"] == "referral"
    assert _lead(env, "di@delta.example")["source"] == "import"  # unknown: import, reported
    assert report.unknown == {("source", "Fax Blast 1998"): 1}
    assert "Lead Status" in report.ignored and "Lead Source" not in report.ignored


def test_a_hubspot_export_keeps_state_region_and_time_zone(env) -> None:
    report = _import(env, HUBSPOT_CONTACTS, asset="hub")
    assert (report.created, report.failed) == (2, 0), report.errors
    eve = _lead(env, "eve@hub.example")
    assert (eve["state"], eve["postal_code"], eve["country"]) == ("Massachusetts", "02110",
                                                                   "United States")
    assert (eve["street"], eve["mobile_phone"], eve["timezone"]) == ("2 Side St", "556",
                                                                     "America/New_York")
    assert eve["source"] == "web_form"
    fay = _lead(env, "fay@hub.example")
    assert fay["source"] == "import" and fay["timezone"] is None
    assert report.unknown == {("timezone", "(GMT-05:00) Eastern Time"): 1}


def test_a_dynamics_export_keeps_street_1_and_zip(env) -> None:
    report = _import(env, DYNAMICS_LEADS, asset="dyn")
    assert (report.created, report.failed) == (2, 0), report.errors
    gus = _lead(env, "gus@dyn.example")
    assert (gus["street"], gus["postal_code"], gus["state"], gus["country"]) == (
        "3 High St", "LS1 1AA", "West Yorkshire", "UK")
    assert (gus["phone"], gus["topic"], gus["source"]) == ("555 1", "Interested in CRM", "referral")
    assert _lead(env, "hal@dyn.example")["source"] == "event"


def test_a_mailchimp_export_brings_its_opt_in_evidence(env) -> None:
    report = _import(env, MAILCHIMP_SUBSCRIBED, asset="news")
    assert (report.created, report.failed) == (2, 0), report.errors
    ivy = _lead(env, "ivy@chimp.example")
    assert ivy["consent"] is True and ivy["timezone"] == "Europe/Berlin"
    assert (ivy["street"], ivy["country"], ivy["state"]) == ("4 Low Rd", "DE", "BE")
    trail = env.get(f"/api/v1/leads/{ivy['id']}/consent").get_json()
    (given,) = [e for e in trail["items"] if e["status"] == "given"]
    assert (given["how"], given["at"], given["ip"]) == ("import", "2023-01-15T10:25:01Z",
                                                        "198.51.100.9")
    jon = _lead(env, "jon@chimp.example")
    (given,) = [e for e in env.get(f"/api/v1/leads/{jon['id']}/consent").get_json()["items"]
                if e["status"] == "given"]
    assert (given["at"], given["ip"]) == ("2022-06-01T09:00:00Z", "203.0.113.8")
    for column in ("OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "TIMEZONE"):
        assert column not in report.ignored


def test_an_unsubscribed_mailchimp_member_is_not_consent(env) -> None:
    content = _csv(["Email Address", "OPTIN_TIME", "OPTIN_IP", "UNSUB_TIME"],
                   ["out@chimp.example", "2022-06-01 09:00:00", "203.0.113.8",
                    "2023-06-01 09:00:00"])
    report = _import(env, content, asset="news")
    assert report.failed == 0
    assert _lead(env, "out@chimp.example")["consent"] is False


def test_a_zoho_export(env) -> None:
    report = _import(env, ZOHO_LEADS, asset="zoho")
    assert (report.created, report.failed) == (1, 0), report.errors
    kim = _lead(env, "kim@zoho.example")
    assert (kim["job_title"], kim["source"], kim["country"]) == ("Engineer", "manual", "India")
