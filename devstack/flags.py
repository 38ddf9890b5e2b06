"""Flag kinds that Invoke parses while it reads the command line, before any task runs.

Invoke gives a flag the type of its default value and calls that type on the text the user
typed. Defaults of these ``str`` subclasses therefore parse a count, duration or choice at
parse time into a typed ``value`` (None when not given), or stop with one sentence and exit
code 2 before a pre-task (install, migrate) has run. Task bodies read ``value`` and pass it on
typed; nothing downstream parses the text again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from invoke.exceptions import Exit, ParseError
from invoke.parser import Parser, ParseResult
from invoke.parser.context import ParserContext

from devstack.errors import UsageError
from devstack.options import parse_count

T = TypeVar("T")


class Checked(str, Generic[T]):
    """A flag's text and its parsed ``value``; ``Kind()`` without text is the default, "not given" (None).

    Text typed on the command line is always parsed: an empty one (``--employees=``) is a flag
    without its value, refused like ``--employees`` at the end of the line.
    """

    placeholder: ClassVar[str] = "VALUE"
    flag: ClassVar[str] = ""
    value: T | None

    def __new__(cls, text: object = None) -> Checked[T]:
        if isinstance(text, cls):  # Invoke casts a task's default value with its own kind
            return text
        self = super().__new__(cls, "" if text is None else str(text))
        try:
            if text is None:
                self.value = None
            elif not str(text):
                raise UsageError(needs_value(cls.flag, cls.placeholder))
            else:
                self.value = cls.parse(str(text))
        except UsageError as exc:
            raise Exit(f"ERROR {exc}", code=exc.code) from None
        return self

    def __getnewargs__(self) -> tuple[str | None]:  # type: ignore[override]  # copies keep "not given"
        return (None if not str(self) else str(self),)

    @classmethod
    def parse(cls, text: str) -> T:
        raise NotImplementedError


def _kind(placeholder: str, flag: str, parse: Callable[[str], Any]) -> type[Checked[Any]]:
    namespace = {
        "placeholder": placeholder,
        "flag": flag,
        "parse": classmethod(lambda cls, text: parse(text)),
    }
    return type(placeholder, (Checked,), namespace)


def needs_value(flag: str, placeholder: str, task: str = "") -> str:
    """The sentence for a value flag given without its value."""
    where = f"'inv --help {task}'" if task else "'inv --help <task>'"
    return f"--{flag} needs a value, such as --{flag}={placeholder}; {where} shows what each flag takes."


def count(flag: str, maximum: int) -> type[Checked[int]]:
    """Return the kind of a whole-number flag in ``0..maximum``."""
    return _kind("N", flag, lambda text: parse_count(flag, text, maximum))


def seconds(flag: str) -> type[Checked[float]]:
    """Return the kind of a flag holding a number of seconds (0 or more)."""
    return _kind("SECONDS", flag, lambda text: parse_seconds(flag, text))


def choice(flag: str, *allowed: str) -> type[Checked[str]]:
    """Return the kind of a flag that takes one of ``allowed``."""

    def parse(text: str) -> str:
        if text not in allowed:
            raise UsageError(f"--{flag} must be one of {', '.join(allowed)}, got '{text}'.")
        return text

    return _kind("|".join(allowed).upper(), flag, parse)


def text(placeholder: str, flag: str) -> type[Checked[str]]:
    """Return the kind of a free-text flag (a path, a URL) shown as ``placeholder``."""
    return _kind(placeholder, flag, lambda value: value)


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


#: How Invoke names a flag in its parse errors (``Flag <Argument: employees [N]> needed value ...``).
ARGUMENT = re.compile(r"<Argument: (?P<name>\w+)[^>]*>")


def usage_sentence(exc: ParseError) -> str:
    """Invoke's parse error as one sentence saying what to do; its own words where they are clear."""
    text = str(exc)
    context = exc.context
    task = context.name if context is not None and context.name else ""
    found = ARGUMENT.search(text)
    if found and "needed value" in text:
        flag = found["name"].replace("_", "-")
        arg = context.flags.get(f"--{flag}") if context is not None else None
        return needs_value(flag, getattr(arg.kind, "placeholder", "VALUE") if arg else "VALUE", task)
    text = ARGUMENT.sub(lambda m: "--" + m["name"].replace("_", "-"), text)
    unknown = re.match(r"No idea what '(?P<word>.*)' is!$", text)
    if unknown and unknown["word"].startswith("-"):
        return f"{text} 'inv --help {task}' lists its flags." if task else f"{text} 'inv --help' lists them."
    if unknown:
        return f"{text} 'inv --list' lists the tasks."
    if "positional arguments" in text and task:
        return f"{text}; 'inv --help {task}' shows how to call it."
    return text


_parse_argv = Parser.parse_argv


def _parse_argv_or_exit(self: Parser, argv: list[str]) -> ParseResult:
    try:
        return _parse_argv(self, argv)
    except ParseError as exc:
        raise Exit(f"ERROR {usage_sentence(exc)}", code=UsageError.code) from None


def parse_errors_exit_2() -> None:
    """A flag without its value, an unknown flag or task: one sentence and exit code 2, not 1.

    Invoke prints its parse errors and exits 1, the code of an unexpected failure. The task
    file calls this before Invoke parses the tasks' part of the command line (any entry point).
    """
    Parser.parse_argv = _parse_argv_or_exit  # type: ignore[method-assign]
