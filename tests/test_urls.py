from __future__ import annotations

import pytest

from devstack.urls import is_local, mask_text, mask_url, unencoded_password


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://guest:guest@localhost:5672//", "amqp://guest:***@localhost:5672//"),
        ("postgres://app:s3cr%40t@db.example.com/app", "postgres://app:***@db.example.com/app"),
        ("postgres://app@127.0.0.1/app", "postgres://app@127.0.0.1/app"),
        ("amqp://u:p@[::1]:5672/v", "amqp://u:***@[::1]:5672/v"),
        ("sqlite:///tmp/db.sqlite3", "sqlite:///tmp/db.sqlite3"),
        ("amqp://user:Leak/Pw1@localhost:5672/", "amqp://user:***@localhost:5672/"),
        ("postgres://u:a?b#c@d@db.example.com/x", "postgres://u:***@db.example.com/x"),
        ("postgres://u:pw@[::1/x", "postgres://u:***@[::1/x"),
    ],
)
def test_mask_url_hides_only_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("sqlite:///anything.sqlite3", True),
        ("postgres://u:p@127.0.0.1:5432/app", True),
        ("postgres://u:p@localhost/app", True),
        ("postgres:///app", True),
        ("postgres://u:p@db.example.com/app", False),
        ("postgres://u:p@10.0.0.5/app", False),
    ],
)
def test_is_local(url: str, local: bool) -> None:
    assert is_local(url) is local


def test_mask_text_hides_passwords_of_every_url() -> None:
    text = (
        "could not connect to postgres://app:s3cret@db:5432/x\nbroker amqp://guest:guest@localhost//"
        " and amqp://user:Le@k/y@host//"
    )
    masked = mask_text(text)
    assert (
        "s3cret" not in masked
        and "guest:guest" not in masked
        and "Le@k" not in masked
        and "k/y" not in masked
    )
    assert "postgres://app:***@db:5432/x" in masked and "amqp://guest:***@localhost//" in masked


@pytest.mark.parametrize(
    ("url", "environ", "local"),
    [
        ("postgres://u:pw@/db?host=db.example.invalid", {}, False),
        ("postgres://u:pw@localhost/db?host=db.example.invalid", {}, False),
        ("postgres://u:pw@/db?hostaddr=192.0.2.10", {}, False),
        ("postgres://u:pw@/db?HOST=db.example.invalid", {}, False),
        ("postgres://u:pw@/db", {"PGHOST": "db.example.invalid"}, False),
        ("postgres://u:pw@/db", {"PGHOSTADDR": "192.0.2.10"}, False),
        ("postgres://u:pw@/db", {"PGHOST": "/var/run/postgresql"}, True),
        ("postgres://u:pw@/db", {"PGSERVICE": "prod"}, False),
        ("postgres://u:pw@/db?service=prod", {}, False),
        ("postgres://u:pw@127.0.0.1:5432,db.example.invalid:5432/db", {}, False),
        ("postgres://u:pw@127.0.0.1:5432,localhost:5433/db", {}, True),
        ("postgres://u:pw@LOCALHOST./db", {}, True),
        ("postgres://u:pw@127.0.0.2/db", {}, True),
        ("postgres://u:pw@[::1]:5432/db", {}, True),
        ("postgres://u:pw@/db?host=%2Ftmp", {}, True),
        ("postgres://u:pw@localhost/db", {"PGHOST": "db.example.invalid"}, True),  # the URL's host wins
        ("postgresql+psycopg://u:pw@db.example.invalid/db", {}, False),
        ("mysql://u:pw@db.example.invalid/db", {}, False),
        ("mysql://u:pw@127.0.0.1/db", {}, True),
    ],
)
def test_is_local_reads_every_source_the_driver_honours(
    url: str, environ: dict[str, str], local: bool
) -> None:
    assert is_local(url, environ) is local


def test_a_broken_ipv6_bracket_is_a_malformed_url() -> None:
    with pytest.raises(ValueError, match="IPv6"):
        is_local("postgres://u:pw@[::1/db", {})


@pytest.mark.parametrize(
    ("url", "unencoded"),
    [
        ("postgres://me:p/ss@127.0.0.1/db", True),
        ("amqp://guest:a?b@localhost//", True),
        ("amqp://guest:a#b@localhost//", True),
        ("postgres://me:100%@127.0.0.1/db", True),
        ("postgres://me:p%2Fss%40x@127.0.0.1/db", False),
        ("postgres://me:p@ss:w@127.0.0.1/db", False),  # read right up to the last '@'
        ("postgres://me:pässwörd@127.0.0.1/db", False),
        ("postgres://me@127.0.0.1/db", False),
        ("sqlite:///services/db.sqlite3", False),
    ],
)
def test_unencoded_password(url: str, unencoded: bool) -> None:
    assert unencoded_password(url) is unencoded
