"""People: intake and its loaders (registration), ingest, lead and contact records,
search, affiliation (contact <-> account), lists, assets, forms, consent, suppressions
(their one writer), imports (csvfile, run, jobs), exports, scoring, funnel.

Next: ``segments/`` (rule trees, incremental membership) gets a package here.
"""
