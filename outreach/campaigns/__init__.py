"""Campaigns: model, lifecycle, dispatch, watch, recipients, sending, pacing, templates, test
sends, tracking, bounces.

Next: ``experiments`` (A/B tests of a campaign's subject or template) and ``reports`` get a
module each here.
"""
