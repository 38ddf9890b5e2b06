"""Probe RabbitMQ in stages (TCP, AMQP login, virtual host) and wait for it with backoff."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import pika
import pika.exceptions

from devstack import retry
from devstack.errors import BrokerError, UsageError
from devstack.urls import mask_url

#: The URL schemes Celery (kombu) reads as RabbitMQ, and what pika calls them.
SCHEMES = {"amqp": "amqp", "pyamqp": "amqp", "amqps": "amqps"}
#: Waiting for RabbitMQ: each failed try is printed, so the pauses grow to 2 s, not 0.5 s.
FIRST_PAUSE = 0.1
MAX_PAUSE = 2.0


@dataclass(frozen=True)
class Broker:
    """Where the broker is, read the way Celery (kombu) reads its URL."""

    host: str
    port: int
    user: str
    password: str
    vhost: str
    url: str
    tls: bool = False

    @property
    def masked(self) -> str:
        return mask(self.url)


mask = mask_url


def _for_pika(url: str) -> str:
    """Check ``url`` where pika and kombu would read it differently; return what pika should read.

    pika reads 'amqp://' and 'amqps://' only, needs a password when there is a user, keeps
    only the first segment of the path and takes any '@' after the host for part of the path.
    The query string is left out: it holds Celery's transport options, which pika refuses.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise UsageError(f"The broker URL {mask(url)} is not an amqp:// URL; fix broker_url.")
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in tail:
        raise UsageError(
            f"The broker URL {mask(url)} has a '/', '?', '#' or '@' that is not percent-encoded "
            "in its user, password or virtual host; encode it ('/' as %2F, '@' as %40) in broker_url."
        )
    path = tail.split("?")[0].split("#")[0]
    if "/" in path[1:] and path != "//":
        raise UsageError(
            f"The broker URL {mask(url)} has a '/' inside its virtual host; "
            "write it as %2F in broker_url (Celery and pika read it differently)."
        )
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" not in userinfo:
        authority = f"{userinfo}:@{hostport}"  # no password: kombu's default applies below
    return f"{SCHEMES[scheme.lower()]}://{authority}{path}"


def parse(url: str) -> Broker:
    """Parse an ``amqp://user:pass@host:port/vhost`` URL with ``pika.URLParameters``.

    It is read as Celery reads it: ``//`` and no path mean the virtual host ``/``, and a
    missing user or password means ``guest``. A URL the two would read differently is refused.
    """
    try:
        params = pika.URLParameters(_for_pika(url))
    except ValueError as exc:
        reason = str(exc)
        if reason.startswith("Port"):
            raise UsageError(f"The broker URL {mask(url)} has an invalid port; fix broker_url.") from None
        raise UsageError(
            f"The broker URL {mask(url)} is not one RabbitMQ's client can read ({_hide(reason, url)}); "
            "fix broker_url."
        ) from None
    credentials = params.credentials
    return Broker(
        host=params.host,
        port=params.port,
        user=credentials.username or "guest",
        password=credentials.password or "guest",
        vhost=params.virtual_host or "/",
        url=url,
        tls=params.ssl_options is not None,
    )


def _hide(text: str, url: str) -> str:
    """Hide from ``text`` (an error of the URL parser) anything that may be the URL's password."""
    userinfo = url.partition("://")[2].rpartition("@")[0]
    password = userinfo.partition(":")[2]
    return text.replace(password, "***") if password else text


def connection_parameters(broker: Broker, timeout: float) -> pika.connection.Parameters:
    """pika's parameters for ``broker``: its URL's options (TLS, heartbeat...), one attempt, ``timeout``."""
    try:
        params = pika.URLParameters(_for_pika(broker.url))
    except (UsageError, ValueError):
        params = pika.ConnectionParameters()
    params.host = broker.host
    params.port = broker.port
    params.virtual_host = broker.vhost
    params.credentials = pika.PlainCredentials(broker.user, broker.password)
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    return params


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
    return retry.retry(
        lambda: probe(broker, timeout=min(3.0, max(0.5, timeout))),
        retry_on=BrokerError,
        timeout=timeout,
        first=FIRST_PAUSE,
        cap=MAX_PAUSE,
        on_retry=on_retry,
    )
