"""Delivery behind a small interface: a ``Messenger`` sends one message to one recipient."""
