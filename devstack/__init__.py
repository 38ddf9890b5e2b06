"""Bring the ticketing platform's dev stack to a seeded, synced, verified state."""

__version__ = "0.1.0"
