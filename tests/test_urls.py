from __future__ import annotations

import pytest

from devstack.urls import is_local, mask_text, mask_url


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
