"""Publish pending outbox events to RabbitMQ as Celery task messages."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from identity import relay
from identity.errors import SeedError
from identity.seeding import parse_int

MAX_BATCH = 10_000


def positive_int(value: object, option: str, maximum: int | None = None) -> int:
    """Parse a positive integer option or raise CommandError."""
    try:
        number = parse_int(value, option)
    except SeedError as exc:
        raise CommandError(str(exc)) from exc
    if number < 1:
        raise CommandError(f"{option} must be 1 or more, got {number}; pass a positive number.")
    if maximum is not None and number > maximum:
        raise CommandError(f"{option} must be at most {maximum}, got {number}; pass a smaller number.")
    return number


def positive_seconds(value: object, option: str) -> float:
    """Parse a positive number of seconds or raise CommandError."""
    try:
        seconds = float(str(value))
    except ValueError:
        raise CommandError(f"{option} must be a number of seconds, got {value!r}; pass e.g. 0.5.") from None
    if not seconds > 0 or seconds == float("inf"):
        raise CommandError(f"{option} must be more than 0 seconds, got {value!r}; pass e.g. 0.5.")
    return seconds


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set `stop` on Ctrl-C, SIGTERM (and Ctrl-Break on Windows) instead of raising."""
    names = ("SIGINT", "SIGTERM", "SIGBREAK")
    signals = [getattr(signal, name) for name in names if hasattr(signal, name)]

    def request_stop(signum: int, frame: FrameType | None) -> None:
        """Ask the loop to stop after the current batch."""
        stop.set()

    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            previous[signum] = signal.signal(signum, request_stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Command(BaseCommand):
    """Publish pending outbox events to RabbitMQ as Celery task messages."""

    help = (
        "Publish pending outbox events in order as Celery tasks (one per sync queue), "
        "marking each batch delivered once the broker confirmed it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --loop, --interval, --batch, --limit, --confirm-timeout and --json."""
        parser.add_argument(
            "--loop",
            action="store_true",
            help="Keep relaying until SIGTERM or Ctrl-C, then stop after the current batch (default: off).",
        )
        parser.add_argument(
            "--interval",
            default="0.5",
            help="With --loop, seconds between polls of an empty outbox (default: 0.5).",
        )
        parser.add_argument(
            "--batch",
            default=str(relay.BATCH),
            help=f"Events per confirm round and transaction, 1-{MAX_BATCH} (default: {relay.BATCH}).",
        )
        parser.add_argument(
            "--limit",
            default=None,
            help="One-shot only: publish at most this many events (default: all pending).",
        )
        parser.add_argument(
            "--confirm-timeout",
            default=str(relay.CONFIRM_TIMEOUT),
            help=f"Seconds to wait for the confirms of a batch (default: {relay.CONFIRM_TIMEOUT:g}).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help='One-shot: print {"published": n, "ids": {queue: [ids]}, "seconds": s} (default: text).',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate the options, then relay once or in a loop."""
        batch = positive_int(options["batch"], "--batch", MAX_BATCH)
        interval = positive_seconds(options["interval"], "--interval")
        confirm_timeout = positive_seconds(options["confirm_timeout"], "--confirm-timeout")
        limit = None if options["limit"] is None else positive_int(options["limit"], "--limit")
        url = str(settings.CELERY_BROKER_URL)
        if options["loop"]:
            if limit is not None or options["json"]:
                raise CommandError("--limit and --json apply to a one-shot run; drop them or drop --loop.")
            self.loop(url, batch, interval, confirm_timeout)
            return
        try:
            report = relay.relay_once(url, batch=batch, limit=limit, confirm_timeout=confirm_timeout)
        except SeedError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json()))
            return
        counts = ", ".join(f"{queue} {len(ids)}" for queue, ids in report.ids.items())
        self.stdout.write(f"Published {report.published} events in {report.seconds:.2f} s ({counts}).")

    def loop(self, url: str, batch: int, interval: float, confirm_timeout: float) -> None:
        """Relay until a stop signal arrives, printing one line per batch."""
        stop = threading.Event()

        def on_batch(envelopes: Sequence[dict[str, Any]]) -> None:
            """Report a delivered batch."""
            self.stdout.write(f"Published {len(envelopes)} events.")
            self.stdout.flush()

        def on_error(message: str) -> None:
            """Report a failed batch that will be retried."""
            self.stderr.write(f"{message} Retrying.")
            self.stderr.flush()

        self.stdout.write(f"Relaying to {relay.masked(url)} every {interval:g} s; stop with Ctrl-C.")
        self.stdout.flush()
        with stop_on_signals(stop):
            try:
                report = relay.relay_loop(
                    url,
                    stop,
                    batch=batch,
                    interval=interval,
                    confirm_timeout=confirm_timeout,
                    on_batch=on_batch,
                    on_error=on_error,
                )
            except SeedError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(f"Stopped after publishing {report.published} events.")
