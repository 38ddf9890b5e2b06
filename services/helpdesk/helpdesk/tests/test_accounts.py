"""Test the administrator of the helpdesk admin site and the checkout's shared seed password."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from helpdesk import passwords
from helpdesk.accounts import ADMIN_LOGIN

SERVICES = Path(__file__).resolve().parents[3]
PASSWORD = "admin-test-password"
COUNTED = {"Employee", "Ticket", "HDTSUser", "ExternalEmployee"}
SEEDED = {"Employee", "Ticket"}
OPTIONS = ("--employees", "2", "--tickets", "1")


def seed_json(*args: str) -> dict[str, Any]:
    """Run ``seed --json`` and return its document."""
    out = StringIO()
    call_command("seed", *OPTIONS, *args, "--json", stdout=out)
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def seed_text(*args: str) -> str:
    """Run ``seed`` and return its human output."""
    out = StringIO()
    call_command("seed", *OPTIONS, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def known_password(monkeypatch: pytest.MonkeyPatch) -> str:
    """Seed with a known password."""
    monkeypatch.setenv("SEED_USER_PASSWORD", PASSWORD)
    return PASSWORD


def test_seed_twice_creates_one_superuser_admin(db: None, known_password: str) -> None:
    assert "Created the administrator admin@example.com" in seed_text()
    second = seed_text()
    assert "administrator" not in second and "Nothing to do: already seeded." in second
    admin = User.objects.get(username=ADMIN_LOGIN)
    assert admin.email == ADMIN_LOGIN
    assert (admin.is_superuser, admin.is_staff, admin.is_active) == (True, True, True)
    assert User.objects.count() == 1


def test_admin_logs_in_to_the_admin_site(db: None, known_password: str) -> None:
    seed_text()
    client = Client()
    assert client.login(username=ADMIN_LOGIN, password=known_password)
    assert client.get("/admin/").status_code == 200
    form = Client()
    response = form.post("/admin/login/", {"username": ADMIN_LOGIN, "password": PASSWORD, "next": "/admin/"})
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert form.get("/admin/helpdesk/ticket/").status_code == 200


def test_the_admin_uses_the_generated_password_file(db: None, seed_password_file: Path) -> None:
    seed_text()
    password = seed_password_file.read_text(encoding="utf-8").strip()
    assert Client().login(username=ADMIN_LOGIN, password=password)


def test_counts_and_reports_are_unchanged(db: None) -> None:
    document = seed_json()
    assert set(document["models"]) == SEEDED
    assert set(document["counts"]) == COUNTED
    out = StringIO()
    call_command("stack_state", "--json", stdout=out)
    state = json.loads(out.getvalue())
    assert set(state["counts"]) == COUNTED
    assert set(state["seeded"]) == SEEDED
    assert state["integrity"]["ok"] is True


def test_a_person_s_edits_are_kept_until_repair(db: None, known_password: str) -> None:
    seed_text()
    admin = User.objects.get(username=ADMIN_LOGIN)
    admin.set_password("chosen-by-a-person")
    admin.save()
    assert "administrator" not in seed_text(), "a new password alone is a person's edit, kept"
    admin.is_superuser = False
    admin.save()
    assert "Kept the administrator" in seed_text()
    admin.refresh_from_db()
    assert admin.check_password("chosen-by-a-person") and not admin.is_superuser
    assert "Gave the administrator" in seed_text("--repair")
    admin.refresh_from_db()
    assert admin.check_password(known_password) and admin.is_superuser
    assert "administrator" not in seed_text("--repair")


def test_a_deleted_admin_comes_back(db: None) -> None:
    seed_text()
    User.objects.filter(username=ADMIN_LOGIN).delete()
    assert "Created the administrator" in seed_text()
    assert User.objects.get(username=ADMIN_LOGIN).is_superuser


# --- the password file of the checkout ------------------------------------------------------


def other_copy(service: str, package: str) -> ModuleType:
    """Load another service's copy of passwords.py as a module of its own."""
    path = SERVICES / service / package / "passwords.py"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    spec = importlib.util.spec_from_file_location(f"{service}_passwords_copy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Path:
    """Make a temporary checkout root, with the seed password left to its file."""
    monkeypatch.delenv("SEED_USER_PASSWORD", raising=False)
    monkeypatch.delenv("SEED_PASSWORD_FILE", raising=False)
    root = tmp_path / "checkout"
    (root / "services" / "helpdesk").mkdir(parents=True)
    settings.BASE_DIR = root / "services" / "helpdesk"
    return root


def test_every_service_reads_one_password_file(checkout: Path, settings: Any) -> None:
    mine = passwords.seed_password()
    shared = checkout / ".devstack" / "seed-password"
    assert shared.read_text(encoding="utf-8").strip() == mine
    if os.name == "posix":
        assert stat.S_IMODE(shared.stat().st_mode) == 0o600
    for service, package in (("auth", "identity"), ("workflow", "workflows")):
        settings.BASE_DIR = checkout / "services" / service
        assert other_copy(service, package).seed_password() == mine


def test_a_seed_writes_the_checkout_s_password_file(db: None, checkout: Path) -> None:
    seed_text()
    password = (checkout / ".devstack" / "seed-password").read_text(encoding="utf-8").strip()
    assert Client().login(username=ADMIN_LOGIN, password=password)
    assert not (checkout / "services" / "helpdesk" / ".seed-password").exists()
