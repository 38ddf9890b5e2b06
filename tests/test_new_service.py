"""Adding a service is one registry row plus its folder: prove it with a throw-away service.

A minimal Django project ("billing") is written into a temporary copy of the repo, one row is
added to the copy's registry, and the real ``inv`` then lists, seeds, verifies and reports it
with no other edit.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from devstack import registry
from devstack.workspace import copy_checkout
from tests.conftest import linking_checkout
from tests.test_integration import REPO, inv, ok, use_broker
from tests.test_living_stack import NO_BROKER

pytestmark = [pytest.mark.integration]

DJANGO = "Django==5.2.19"
ROW = '    Service("billing", rows=(Rows("Invoice", 0, plus="invoices"),)),\n'
FLAG = '    SeedFlag("invoices", "billing", "invoices", 3, 1_000, "billing invoices"),\n'

FILES = {
    "requirements.txt": f"{DJANGO}\n",
    "manage.py": """
        import os
        import sys

        if __name__ == "__main__":
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
            from django.core.management import execute_from_command_line

            execute_from_command_line(sys.argv)
    """,
    "config/__init__.py": "",
    "config/settings.py": """
        import os
        from pathlib import Path

        BASE_DIR = Path(__file__).resolve().parent.parent
        SECRET_KEY = "throw-away"
        INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "billing"]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
        DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
        USE_TZ = True
    """,
    "billing/__init__.py": "",
    "billing/models.py": """
        from django.db import models


        class Invoice(models.Model):
            number = models.CharField(max_length=20, unique=True)


        class SeedMark(models.Model):
            key = models.CharField(max_length=10, primary_key=True)
            options = models.JSONField()
    """,
    "billing/migrations/__init__.py": "",
    "billing/migrations/0001_initial.py": """
        from django.db import migrations, models


        class Migration(migrations.Migration):
            initial = True
            dependencies = []
            operations = [
                migrations.CreateModel(
                    name="Invoice",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                        ("number", models.CharField(max_length=20, unique=True)),
                    ],
                ),
                migrations.CreateModel(
                    name="SeedMark",
                    fields=[
                        ("key", models.CharField(max_length=10, primary_key=True, serialize=False)),
                        ("options", models.JSONField()),
                    ],
                ),
            ]
    """,
    "billing/management/__init__.py": "",
    "billing/management/commands/__init__.py": "",
    "billing/management/commands/seed.py": """
        import json

        from django.core.management.base import BaseCommand
        from django.db import transaction

        from billing.models import Invoice, SeedMark


        class Command(BaseCommand):
            def add_arguments(self, parser):
                parser.add_argument("--invoices", type=int, default=3)
                parser.add_argument("--seed", type=int, default=7)
                parser.add_argument("--json", action="store_true")

            def handle(self, *args, **options):
                wanted = [f"INV-{options['seed']}-{n:04d}" for n in range(options["invoices"])]
                with transaction.atomic():
                    have = set(Invoice.objects.values_list("number", flat=True))
                    new = [Invoice(number=n) for n in wanted if n not in have]
                    Invoice.objects.bulk_create(new)
                    mark = {"invoices": options["invoices"], "seed": options["seed"]}
                    SeedMark.objects.update_or_create(key="seed", defaults={"options": mark})
                report = {
                    "service": "billing",
                    "changed": bool(new),
                    "models": {"Invoice": {"created": len(new), "updated": 0, "unchanged": len(have)}},
                    "counts": {"Invoice": Invoice.objects.count()},
                }
                self.stdout.write(json.dumps(report))
    """,
    "billing/management/commands/stack_state.py": """
        import json

        from django.core.management.base import BaseCommand
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        from billing.models import Invoice, SeedMark


        class Command(BaseCommand):
            requires_migrations_checks = False

            def add_arguments(self, parser):
                parser.add_argument("--json", action="store_true")

            def handle(self, *args, **options):
                executor = MigrationExecutor(connection)
                plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
                pending = [f"{m.app_label}.{m.name}" for m, _ in plan]
                tables = set(connection.introspection.table_names())
                ready = {"billing_invoice", "billing_seedmark"} <= tables
                mark = SeedMark.objects.filter(key="seed").first() if ready else None
                report = {
                    "service": "billing",
                    "database": {"vendor": connection.vendor, "name": str(connection.settings_dict["NAME"])},
                    "migrations": {"pending": pending},
                    "counts": {"Invoice": Invoice.objects.count()} if ready else None,
                    "pending_events": {},
                    "processed_events": 0,
                    "deferred_events": 0,
                    "last_seed": mark.options if mark else None,
                    "integrity": {"ok": True, "problems": []},
                }
                self.stdout.write(json.dumps(report))
    """,
}


def add_service(repo: Path) -> None:
    """Write the service's folder and its registry rows: the only edits a new service needs."""
    for name, text in FILES.items():
        path = repo / "services" / "billing" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    source = repo / "devstack" / "registry.py"
    text = source.read_text(encoding="utf-8")
    services_end = text.index("\n)\n", text.index("SERVICES: tuple[Service, ...] = ("))
    text = text[: services_end + 1] + ROW + text[services_end + 1 :]
    flags_end = text.index("\n)", text.index("SEED_FLAGS: tuple[SeedFlag, ...] = ("))
    text = text[: flags_end + 1] + FLAG + text[flags_end + 1 :]
    source.write_text(text, encoding="utf-8")


@pytest.fixture(autouse=True)
def _copies_link_the_run_venvs(seeded_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy links the run's virtualenvs of the three services (see tests/conftest.py)."""
    monkeypatch.setattr(sys.modules[__name__], "copy_checkout", linking_checkout(seeded_template))


def test_a_fourth_service_is_a_registry_row_and_a_folder(tmp_path: Path) -> None:
    repo = copy_checkout(REPO, tmp_path / "repo")
    use_broker(repo, NO_BROKER)  # offline: a developer's broker is never asked
    add_service(repo)

    listed = ok(repo, "--list").stdout
    assert all(f"{ns}.billing" in listed for ns in ("migrate", "seed", "reset"))
    assert "--invoices=N" in ok(repo, "--help", "seed-all").stdout

    ok(repo, "seed-all", "--offline", "--invoices", "4", "--report", "first.json")
    first = json.loads((repo / "first.json").read_text(encoding="utf-8"))
    ran = {s["step"] for s in first["steps"] if s["status"] == "ran"}
    assert {"migrate.billing", "seed.billing", "verify"} <= ran
    assert first["counts"]["billing"] == {"Invoice": 4}
    assert first["expected"]["billing"] == {"Invoice": 4}
    assert first["counts"]["auth"] == registry.expected_counts()["auth"]

    ok(repo, "verify")
    status = json.loads(ok(repo, "status", "--json").stdout)
    assert status["services"]["billing"]["counts"] == {"Invoice": 4}

    (repo / ".devstack" / "verified.json").unlink()  # take the slow path: each step decides
    ok(repo, "seed-all", "--offline", "--report", "second.json")
    second = json.loads((repo / "second.json").read_text(encoding="utf-8"))
    assert not second["changed"], second["steps"]
    done = inv(repo, "seed.billing", "--invoices", "5000")
    assert done.returncode == 2 and "--invoices can be at most 1,000" in done.stderr
