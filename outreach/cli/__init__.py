"""The `outreach` command, the inbound SMTP server, the mailbox poll and dev mode."""
