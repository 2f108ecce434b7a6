"""Sending a batch: heartbeats, the batch loop, the per-campaign context, delivery and its outcome."""
