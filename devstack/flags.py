"""Flag kinds that Invoke parses while it reads the command line, before any task runs.

Invoke gives a flag the type of its default value and calls that type on the text the user
typed. Defaults of these ``str`` subclasses therefore parse a count, duration or choice at
parse time into a typed ``value`` (None when not given), or stop with one sentence and exit
code 2 before a pre-task (install, migrate) has run. Task bodies read ``value`` and pass it on
typed; nothing downstream parses the text again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from invoke.exceptions import Exit
from invoke.parser.context import ParserContext

from devstack.errors import UsageError
from devstack.options import parse_count

T = TypeVar("T")


class Checked(str, Generic[T]):
    """A flag's text and its parsed ``value``; the empty text means "not given" (None)."""

    placeholder: ClassVar[str] = "VALUE"
    value: T | None

    def __new__(cls, text: object = "") -> Checked[T]:
        self = super().__new__(cls, str(text))
        try:
            self.value = cls.parse(str(text)) if str(text) else None
        except UsageError as exc:
            raise Exit(f"ERROR {exc}", code=exc.code) from None
        return self

    @classmethod
    def parse(cls, text: str) -> T:
        raise NotImplementedError


def _kind(placeholder: str, parse: Callable[[str], Any]) -> type[Checked[Any]]:
    namespace = {"placeholder": placeholder, "parse": classmethod(lambda cls, text: parse(text))}
    return type(placeholder, (Checked,), namespace)


def count(flag: str, maximum: int) -> type[Checked[int]]:
    """Return the kind of a whole-number flag in ``0..maximum``."""
    return _kind("N", lambda text: parse_count(flag, text, maximum))


def seconds(flag: str) -> type[Checked[float]]:
    """Return the kind of a flag holding a number of seconds (0 or more)."""
    return _kind("SECONDS", lambda text: parse_seconds(flag, text))


def choice(flag: str, *allowed: str) -> type[Checked[str]]:
    """Return the kind of a flag that takes one of ``allowed``."""

    def parse(text: str) -> str:
        if text not in allowed:
            raise UsageError(f"--{flag} must be one of {', '.join(allowed)}, got '{text}'.")
        return text

    return _kind("|".join(allowed).upper(), parse)


def text(placeholder: str) -> type[Checked[str]]:
    """Return the kind of a free-text flag (a path, a URL) shown as ``placeholder``."""
    return _kind(placeholder, lambda value: value)


def value(flag: object, kind: type[Checked[T]]) -> T | None:
    """Return a flag's typed value, also when a caller passed plain text (tests, other tasks)."""
    if isinstance(flag, Checked):
        parsed: T | None = flag.value
        return parsed
    if flag is None or flag == "":
        return None
    return kind.parse(str(flag))


def parse_seconds(flag: str, value: object) -> float:
    """Parse a finite number of seconds, 0 or more, or fail naming the flag."""
    try:
        number = float(str(value))
    except ValueError:
        raise UsageError(f"--{flag} must be a number of seconds, got '{value}'.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise UsageError(f"--{flag} must be a finite number of seconds, got '{value}'.")
    if number < 0:
        raise UsageError(f"--{flag} must be 0 or more, got {number:g}.")
    return number


_help_for = ParserContext.help_for


def _help_with_placeholders(self: ParserContext, flag: str) -> tuple[str, str]:
    """Invoke shows a value's placeholder only for ``str`` and ``int``; show ours too."""
    names, help_text = _help_for(self, flag)
    kind = self.flags[flag].kind
    if isinstance(kind, type) and issubclass(kind, Checked):
        names = ", ".join(
            f"{name}={kind.placeholder}" if name.startswith("--") else f"{name} {kind.placeholder}"
            for name in names.split(", ")
        )
    return names, help_text


def show_placeholders() -> None:
    """Make ``inv --help <task>`` print ``--employees=N`` rather than a bare ``--employees``."""
    ParserContext.help_for = _help_with_placeholders  # type: ignore[method-assign]
