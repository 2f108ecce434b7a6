"""Bounces and complaints: the processor, the mailbox poll and the providers' webhooks."""
