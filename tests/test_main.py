"""The runner's own ``inv``: the checkout's tasks from any folder of it, parse errors exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from invoke.exceptions import CollectionNotFound

from devstack import main
from tests.conftest import inv_env, seeded_copy

REPO = Path(__file__).resolve().parents[1]
#: The ``inv`` of this virtualenv: the project's entry point when pip installed the runner.
INV = Path(sys.executable).parent / ("inv.exe" if sys.platform == "win32" else "inv")


def test_the_checkout_root_is_found_from_any_folder_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "beside", lambda root: None)  # this process keeps its devstack package
    (tmp_path / "devstack").mkdir()
    (tmp_path / "devstack" / "__init__.py").touch()
    (tmp_path / "tasks.py").touch()
    package = tmp_path / "services" / "helpdesk" / "helpdesk"
    package.mkdir(parents=True)
    (package / "tasks.py").write_text("from celery import shared_task\n", encoding="utf-8")
    assert main.checkout_root(package) == tmp_path
    assert main.checkout_root(tmp_path) == tmp_path
    spec = main.CheckoutLoader(start=str(package)).find("tasks")
    assert spec is not None and spec.origin == str(tmp_path / "tasks.py")


def test_another_checkout_s_tasks_import_the_package_beside_them(tmp_path: Path) -> None:
    saved = {n: m for n, m in sys.modules.items() if n == "devstack" or n.startswith("devstack.")}
    try:
        main.beside(REPO)  # the package this process runs is this checkout's: kept
        assert sys.modules["devstack"] is saved["devstack"]
        main.beside(tmp_path)  # another checkout: forgotten, so its tasks.py imports its own
        assert not [n for n in sys.modules if n == "devstack" or n.startswith("devstack.")]
    finally:
        sys.modules.update(saved)


def test_outside_a_checkout_it_searches_as_invoke_does(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").touch()
    (tmp_path / "sub").mkdir()
    assert main.checkout_root(tmp_path / "sub") is None
    spec = main.CheckoutLoader(start=str(tmp_path / "sub")).find("tasks")
    assert spec is not None and spec.origin == str(tmp_path / "tasks.py")
    with pytest.raises(CollectionNotFound):
        main.CheckoutLoader(start=str(tmp_path)).find("other")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, seeded_template: Path) -> Path:
    return seeded_copy(seeded_template, tmp_path_factory.mktemp("main") / "repo")


def real_inv(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if sys.platform != "win32":  # Windows' inv.exe is a launcher with its script zipped inside
        assert "devstack.main" in INV.read_text(encoding="utf-8", errors="replace"), (
            f"{INV} is Invoke's own inv, not the runner's: reinstall the runner (pip install -e .)"
        )
    return subprocess.run(
        [str(INV), *args], cwd=folder, env=inv_env(), capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    "folder", ["services/helpdesk/helpdesk", "services/workflow/workflows", "services/auth", "devstack", "."]
)
def test_the_real_inv_works_from_every_folder_of_the_checkout(repo: Path, folder: str) -> None:
    done = real_inv(repo / folder, "status", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["services"]["helpdesk"]["counts"]["Ticket"] == 20
    assert report["rabbitmq"]["url"].endswith("127.0.0.1:9/none")  # the checkout's invoke.yaml was read


@pytest.mark.integration
def test_the_real_inv_runs_a_task_that_writes_from_a_celery_package(repo: Path) -> None:
    done = real_inv(repo / "services" / "helpdesk" / "helpdesk", "seed.helpdesk", "--tickets", "25")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Ticket 5 created" in done.stdout
    assert not (repo / "services" / "helpdesk" / "helpdesk" / "logs").exists()  # paths stay the checkout's


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("seed.helpdesk", "--employees"),
            "ERROR --employees needs a value, such as --employees=N; 'inv --help seed.helpdesk' shows "
            "what each flag takes.",
        ),
        (
            ("seed.helpdesk", "--employees=", "--tickets", "5"),
            "ERROR --employees needs a value, such as --employees=N; 'inv --help <task>' shows what each "
            "flag takes.",
        ),
        (
            ("seed.helpdesk", "--bogus"),
            "ERROR No idea what '--bogus' is! 'inv --help seed.helpdesk' lists its flags.",
        ),
        (("seed.billing",), "ERROR No idea what 'seed.billing' is! 'inv --list' lists the tasks."),
        (("--help", "seed.billing"), "ERROR No idea what 'seed.billing' is! 'inv --list' lists the tasks."),
    ],
)
def test_a_bad_command_line_is_exit_2_before_any_task(repo: Path, args: tuple[str, ...], said: str) -> None:
    before = sorted(p.name for p in (repo / "services" / "helpdesk").glob("db.sqlite3*"))
    for runner in ("inv", "python -m invoke"):
        if runner == "inv":
            done = real_inv(repo / "services" / "helpdesk" / "helpdesk", *args)
        elif args[0] == "--help":
            continue  # Invoke's own program prints --help's error itself, with exit 1
        else:
            done = subprocess.run(
                [sys.executable, "-m", "invoke", *args],
                cwd=repo,
                env=inv_env(),
                capture_output=True,
                text=True,
            )
        assert done.returncode == 2, (runner, done.stderr)
        assert done.stderr.strip() == said, runner
        assert "Traceback" not in done.stdout + done.stderr and "-> install" not in done.stdout
    assert sorted(p.name for p in (repo / "services" / "helpdesk").glob("db.sqlite3*")) == before


@pytest.mark.parametrize("args", [("--list",), ("doctor", "--json")])
def test_a_reader_that_leaves_early_gets_no_traceback(args: tuple[str, ...]) -> None:
    """``inv --list | head -1``: Invoke's own printing, or a task's, meets a closed pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from devstack.main import program; program.run()", *args],
        cwd=Path(__file__).resolve().parents[1], env=inv_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader leaves before the program prints
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err
