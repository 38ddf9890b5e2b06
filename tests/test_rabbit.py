from __future__ import annotations

import socket
import time

import pytest

from devstack import rabbit
from devstack.errors import BrokerError, UsageError


@pytest.mark.parametrize(
    ("url", "vhost"),
    [
        ("amqp://guest:guest@localhost:5672//", "/"),
        ("amqp://guest:guest@localhost:5672/", "/"),
        ("amqp://guest:guest@localhost", "/"),
        ("amqp://u:p%40ss@h:5673/dev", "dev"),
        ("amqp://u:p@h/%2Fdev", "/dev"),
        ("pyamqp://u:p@h/dev", "dev"),
        ("amqp://u:p@h/dev?heartbeat=30&ssl=1", "dev"),
    ],
)
def test_parse_reads_urls_like_celery(url: str, vhost: str) -> None:
    assert rabbit.parse(url).vhost == vhost


def test_parse_decodes_credentials_and_masks() -> None:
    broker = rabbit.parse("amqp://u:p%40ss@h:5673/dev")
    assert (broker.user, broker.password, broker.port) == ("u", "p@ss", 5673)
    assert "p%40ss" not in broker.masked and "***" in broker.masked


def test_parse_rejects_other_schemes() -> None:
    with pytest.raises(UsageError, match="not an amqp:// URL"):
        rabbit.parse("redis://user:secret@localhost:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_port_says_it_does_not_answer() -> None:
    broker = rabbit.parse(f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    with pytest.raises(BrokerError, match=r"does not answer.*start it"):
        rabbit.probe(broker, timeout=1)


def test_wait_backs_off_until_the_timeout() -> None:
    broker = rabbit.parse(f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    retries: list[float] = []
    started = time.monotonic()
    with pytest.raises(BrokerError):
        rabbit.wait(broker, 0.6, lambda exc, left: retries.append(left))
    assert 0.6 <= time.monotonic() - started < 3
    assert len(retries) >= 2


@pytest.mark.rabbitmq
def test_real_broker_passes_every_stage() -> None:
    stages = rabbit.probe(rabbit.parse("amqp://guest:guest@127.0.0.1:5672//"))
    assert [s.split()[0] for s in stages] == ["TCP", "AMQP", "virtual"]


@pytest.mark.rabbitmq
def test_real_broker_wrong_password_is_named_and_masked() -> None:
    with pytest.raises(BrokerError) as caught:
        rabbit.probe(rabbit.parse("amqp://guest:wrong-pass@127.0.0.1:5672//"))
    assert "refused the login of user 'guest'" in str(caught.value)
    assert "wrong-pass" not in str(caught.value)


@pytest.mark.rabbitmq
def test_real_broker_missing_vhost_is_named() -> None:
    with pytest.raises(BrokerError, match="no virtual host 'no-such-vhost'"):
        rabbit.probe(rabbit.parse("amqp://guest:guest@127.0.0.1:5672/no-such-vhost"))


def test_bad_port_is_a_usage_error_with_the_password_masked() -> None:
    with pytest.raises(UsageError, match="invalid port") as caught:
        rabbit.parse("amqp://guest:secret@localhost:99999999//")
    assert "secret" not in str(caught.value)


def test_parse_fills_in_what_celery_fills_in() -> None:
    broker = rabbit.parse("amqp://worker@rabbit.local")
    assert (broker.host, broker.port, broker.user) == ("rabbit.local", 5672, "worker")
    assert (broker.password, broker.vhost) == ("guest", "/")
    assert rabbit.parse("amqp://").host == "localhost"
    secure = rabbit.parse("amqps://u:p@h/dev")
    assert (secure.port, secure.tls) == (5671, True)
    assert rabbit.parse("amqp://u:p@[::1]:5673/").host == "::1"


def test_connection_parameters_keep_tls_and_use_one_attempt() -> None:
    params = rabbit.connection_parameters(rabbit.parse("amqps://u:p%2Fw@h:5999/dev"), timeout=2.5)
    assert (params.host, params.port, params.virtual_host) == ("h", 5999, "dev")
    assert (params.credentials.username, params.credentials.password) == ("u", "p/w")
    assert params.ssl_options is not None
    assert (params.socket_timeout, params.connection_attempts) == (2.5, 1)


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:se/cret@localhost:5672//",
        "amqp://guest:se?cret@localhost:5672//",
        "amqp://guest:se#cret@localhost:5672//",
        "amqp://guest:se@c/ret@localhost:5672//",
        "amqp://guest:se/cret@localhost:99999999//",
    ],
)
def test_unencoded_characters_in_a_password_never_leak(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        rabbit.parse(url)
    secret = url.removeprefix("amqp://guest:").rpartition("@localhost")[0]
    message = str(caught.value)
    assert secret not in message and secret[2:] not in message
    assert "amqp://guest:***@localhost:" in message
    assert "percent-encoded" in message or "invalid port" in message
    assert secret not in rabbit.mask(url)


def test_an_unencoded_at_sign_in_a_password_is_read_like_celery() -> None:
    broker = rabbit.parse("amqp://guest:p@ss@localhost:5672/dev")
    assert (broker.password, broker.host, broker.vhost) == ("p@ss", "localhost", "dev")
    assert "p@ss" not in broker.masked and broker.masked == "amqp://guest:***@localhost:5672/dev"


def test_a_slash_inside_the_virtual_host_is_refused() -> None:
    with pytest.raises(UsageError, match="'/' inside its virtual host; write it as %2F"):
        rabbit.parse("amqp://u:p@h/a/b")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://guest:guest@localhost:5672//", "amqp://guest:***@localhost:5672//"),
        ("amqp://localhost//", "amqp://localhost//"),
        ("amqp://user@localhost//", "amqp://user@localhost//"),
        ("amqp://u:a/b?c#d@h:1/v", "amqp://u:***@h:1/v"),
        ("u:secret@h", "u:***@h"),
    ],
)
def test_mask(url: str, masked: str) -> None:
    assert rabbit.mask(url) == masked
