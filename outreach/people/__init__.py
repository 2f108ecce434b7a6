"""People: intake, ingest, lead and contact records, search, lists, assets, forms, consent,
suppressions (their one writer), imports, exports, scoring, funnel.

Next: ``segments/`` (rule trees, incremental membership) gets a package here.
"""
