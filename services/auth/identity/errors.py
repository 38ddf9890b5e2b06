"""Define the one error family the identity library raises for user errors."""


class SeedError(Exception):
    """Signal a user error (one sentence: what is wrong and what to do)."""


class RelayError(SeedError):
    """Signal a relay failure: broker unreachable, a nack or a missing confirm."""
