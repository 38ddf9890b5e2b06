"""Flag kinds that Invoke checks while it parses the command line, before any task runs.

Invoke gives a flag the type of its default value and calls that type on the text the user
typed. Defaults of these ``str`` subclasses therefore reject a bad count, duration or choice at
parse time, with one sentence and exit code 2, before a pre-task (install, migrate) has run.
"""

from __future__ import annotations

from invoke.exceptions import Exit

from devstack.errors import UsageError
from devstack.options import parse_count


class Checked(str):
    """A flag's text, checked on creation; the empty text means "not given"."""

    def __new__(cls, value: object = "") -> Checked:
        text = str(value)
        if text:
            try:
                cls.check(text)
            except UsageError as exc:
                raise Exit(f"ERROR {exc}", code=exc.code) from None
        return super().__new__(cls, text)

    @classmethod
    def check(cls, text: str) -> None:
        raise NotImplementedError


def count(flag: str, maximum: int) -> type[Checked]:
    """Return the kind of a whole-number flag in ``0..maximum``."""

    def check(cls: type[Checked], text: str) -> None:
        parse_count(flag, text, maximum)

    return type("N", (Checked,), {"check": classmethod(check)})


def seconds(flag: str) -> type[Checked]:
    """Return the kind of a flag holding a number of seconds (0 or more)."""

    def check(cls: type[Checked], text: str) -> None:
        parse_seconds(flag, text)

    return type("SECONDS", (Checked,), {"check": classmethod(check)})


def choice(flag: str, *allowed: str) -> type[Checked]:
    """Return the kind of a flag that takes one of ``allowed``."""

    def check(cls: type[Checked], text: str) -> None:
        if text not in allowed:
            raise UsageError(f"--{flag} must be one of {', '.join(allowed)}, got '{text}'.")

    return type("|".join(allowed).upper(), (Checked,), {"check": classmethod(check)})


def parse_seconds(flag: str, value: object) -> float:
    """Parse a number of seconds, 0 or more, or fail naming the flag."""
    try:
        number = float(str(value))
    except ValueError:
        raise UsageError(f"--{flag} must be a number of seconds, got '{value}'.") from None
    if number < 0:
        raise UsageError(f"--{flag} must be 0 or more, got {number:g}.")
    return number
