"""Bounce and complaint intake: report parsing (``reports``) and the SMTP door (``server``)."""
