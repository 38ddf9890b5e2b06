"""Probe RabbitMQ in stages (TCP, AMQP login, virtual host) and wait for it with backoff."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions

from devstack.errors import BrokerError, UsageError
from devstack.urls import mask_url


@dataclass(frozen=True)
class Broker:
    """Where the broker is, parsed the way Celery (kombu) reads its URL."""

    host: str
    port: int
    user: str
    password: str
    vhost: str
    url: str

    @property
    def masked(self) -> str:
        return mask_url(self.url)


def parse(url: str) -> Broker:
    """Parse an ``amqp://user:pass@host:port/vhost`` URL (``//`` and no path mean ``/``)."""
    parts = urlsplit(url)
    if parts.scheme not in {"amqp", "pyamqp", "amqps"}:
        raise UsageError(f"The broker URL {mask_url(url)} is not an amqp:// URL; fix broker_url.")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    try:
        port = parts.port or 5672
    except ValueError:
        raise UsageError(f"The broker URL {mask_url(url)} has an invalid port; fix broker_url.") from None
    return Broker(
        host=parts.hostname or "localhost",
        port=port,
        user=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        vhost=unquote(path) or "/",
        url=url,
    )


def connection_parameters(broker: Broker, timeout: float) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=broker.host,
        port=broker.port,
        virtual_host=broker.vhost,
        credentials=pika.PlainCredentials(broker.user, broker.password),
        socket_timeout=timeout,
        blocked_connection_timeout=timeout,
        connection_attempts=1,
    )


def probe(broker: Broker, timeout: float = 3.0) -> list[str]:
    """Check TCP, login and virtual host in turn; return the stages passed or raise one sentence."""
    try:
        socket.create_connection((broker.host, broker.port), timeout=timeout).close()
    except OSError as exc:
        raise BrokerError(
            f"RabbitMQ at {broker.host}:{broker.port} does not answer ({exc.strerror or exc}); "
            "start it (see README, 'Start RabbitMQ') or fix broker_url."
        ) from None
    stages = [f"TCP {broker.host}:{broker.port} answers"]
    try:
        pika.BlockingConnection(connection_parameters(broker, timeout)).close()
    except pika.exceptions.ProbableAuthenticationError:
        raise BrokerError(
            f"RabbitMQ refused the login of user '{broker.user}' ({broker.masked}); "
            "fix the user or password in broker_url."
        ) from None
    except pika.exceptions.ProbableAccessDeniedError:
        stages.append(f"AMQP login as '{broker.user}' accepted")
        raise BrokerError(
            f"RabbitMQ has no virtual host '{broker.vhost}' that user '{broker.user}' may use; "
            f"create it (rabbitmqctl add_vhost {broker.vhost}) or fix broker_url."
        ) from None
    except pika.exceptions.AMQPError as exc:
        raise BrokerError(
            f"RabbitMQ at {broker.masked} accepted TCP but not AMQP ({type(exc).__name__}); "
            "check that the port is RabbitMQ's AMQP port."
        ) from None
    stages.append(f"AMQP login as '{broker.user}' accepted")
    stages.append(f"virtual host '{broker.vhost}' open")
    return stages


def wait(
    broker: Broker,
    timeout: float,
    on_retry: Callable[[BrokerError, float], None] | None = None,
) -> list[str]:
    """Probe until RabbitMQ answers or ``timeout`` seconds pass, backing off between tries."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            return probe(broker, timeout=min(3.0, max(0.5, timeout)))
        except BrokerError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            if on_retry:
                on_retry(exc, left)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)
