from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devstack.workspace import checkout_files, copy_checkout

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def write(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def listing(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with tracked, edited, new, ignored, force-added and deleted files."""
    root = tmp_path / "repo"
    write(root / ".gitignore", ".venv/\ndb.sqlite3\n*.log\nlocal-only/\n")
    write(root / "tasks.py", "committed")
    write(root / "services" / "auth" / ".gitignore", "secrets.txt\n")
    write(root / "services" / "auth" / "manage.py")
    write(root / "forced.log", "tracked though ignored")
    write(root / "gone.txt")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "add", "-f", "forced.log")
    git(root, "commit", "-q", "-m", "start")
    write(root / "tasks.py", "edited, not committed")
    write(root / "devstack" / "new_module.py")  # untracked, not ignored
    (root / "gone.txt").unlink()  # tracked, deleted from the work tree
    for ignored in (".venv/bin/python", "db.sqlite3", "run.log", "local-only/x", "services/auth/secrets.txt"):
        write(root / ignored)
    return root


def test_copy_holds_what_git_lists_and_nothing_it_ignores(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    write(target / "stale.txt")  # a previous copy is replaced
    assert copy_checkout(repo, target) == target
    assert listing(target) == {
        ".gitignore",
        "tasks.py",
        "forced.log",
        "services/auth/.gitignore",
        "services/auth/manage.py",
        "devstack/new_module.py",
    }
    assert (target / "tasks.py").read_text(encoding="utf-8") == "edited, not committed"
    assert not (target / ".git").exists()


def test_names_git_would_quote_are_copied(repo: Path, tmp_path: Path) -> None:
    write(repo / "docs" / "naïve name.txt")
    git(repo, "add", "docs")
    copy_checkout(repo, tmp_path / "copy")
    assert (tmp_path / "copy" / "docs" / "naïve name.txt").is_file()


def test_a_folder_that_is_not_a_checkout_falls_back_to_the_ignore_list(tmp_path: Path) -> None:
    source = tmp_path / "plain"
    for name in ("tasks.py", ".venv/bin/python", "db.sqlite3", "logs/x.log", "invoke.yaml", "run.log"):
        write(source / name)
    assert checkout_files(source) is None
    copy_checkout(source, tmp_path / "copy")
    assert listing(tmp_path / "copy") == {"tasks.py", "run.log"}  # only LOCAL_STATE is left out


def test_a_folder_ignored_inside_another_checkout_is_not_read_as_one(repo: Path) -> None:
    inner = repo / "local-only"
    assert checkout_files(inner) is None  # git would list nothing there: copy it as a plain folder
    assert checkout_files(repo) is not None


def test_git_location_variables_do_not_redirect_the_listing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", os.fspath(other / ".git"))
    files = checkout_files(repo)
    assert files is not None and "tasks.py" in files
