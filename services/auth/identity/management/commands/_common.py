"""Share the error boundary and output helpers of the identity commands."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from identity.errors import SeedError


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user errors into CommandError (one sentence, no traceback)."""
    try:
        yield
    except SeedError as exc:
        raise CommandError(str(exc)) from exc
    except IntegrityError as exc:
        raise CommandError(
            f"Seeding conflicts with rows already in the database ({exc}); "
            "fix or remove those rows, then run the command again."
        ) from exc


def say(command: BaseCommand, lines: Sequence[str], to_stderr: bool = False) -> None:
    """Write human lines to stdout, or to stderr when stdout carries JSON."""
    stream = command.stderr if to_stderr else command.stdout
    for line in lines:
        stream.write(line)
