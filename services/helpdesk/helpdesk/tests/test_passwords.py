"""Test how seeded employees get their password."""

from __future__ import annotations

import stat
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command

from helpdesk.models import Employee

pytestmark = pytest.mark.django_db


def test_env_password_is_used_and_never_printed(
    monkeypatch: pytest.MonkeyPatch, seed_password_file: Path
) -> None:
    monkeypatch.setenv("SEED_USER_PASSWORD", "s3cret-from-env")
    out, err = StringIO(), StringIO()
    call_command("seed", "--employees", "3", "--tickets", "0", stdout=out, stderr=err)
    assert all(check_password("s3cret-from-env", e.password) for e in Employee.objects.all())
    assert "s3cret-from-env" not in out.getvalue() + err.getvalue()
    assert not seed_password_file.exists()


def test_generated_password_is_private_and_reused(seed_password_file: Path) -> None:
    out = StringIO()
    call_command("seed", "--employees", "2", "--tickets", "0", "--json", stdout=out, stderr=out)
    assert stat.S_IMODE(seed_password_file.stat().st_mode) == 0o600
    password = seed_password_file.read_text().strip()
    assert len(password) >= 20
    assert password not in out.getvalue()
    call_command("seed", "--employees", "4", "--tickets", "0", stdout=out)
    assert seed_password_file.read_text().strip() == password
    assert all(check_password(password, e.password) for e in Employee.objects.all())


def test_existing_hashes_are_never_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    call_command("seed", "--employees", "2", "--tickets", "0", stdout=StringIO())
    hashes = dict(Employee.objects.values_list("company_id", "password"))
    monkeypatch.setenv("SEED_USER_PASSWORD", "another-password")
    call_command("seed", "--employees", "2", "--tickets", "0", "--seed", "9", stdout=StringIO())
    assert dict(Employee.objects.values_list("company_id", "password")) == hashes


def test_hash_computed_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    import helpdesk.seeding as seeding

    real = seeding.make_password

    def counting(password: str) -> str:
        calls.append("x")
        return real(password)

    monkeypatch.setattr(seeding, "make_password", counting)
    call_command("seed", "--employees", "30", "--tickets", "0", stdout=StringIO())
    assert len(calls) == 1
    call_command("seed", "--employees", "30", "--tickets", "0", stdout=StringIO())
    assert len(calls) == 1
