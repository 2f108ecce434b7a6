"""SMTP delivery, one recipient per transaction: who is at fault for a reply and the
exceptions that say so (``classify``), the envelope of one transaction (``envelope``), and
the messenger that sends through the configured relays (``messenger``)."""
