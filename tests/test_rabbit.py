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
