from __future__ import annotations

import json
from pathlib import Path

from devstack import venvs


def test_windows_and_posix_layouts() -> None:
    venv = Path("svc") / ".venv"
    assert venvs.venv_python(venv, windows=True) == venv / "Scripts" / "python.exe"
    assert venvs.venv_python(venv, windows=False) == venv / "bin" / "python"


def test_digest_follows_included_requirement_files(tmp_path: Path) -> None:
    base = tmp_path / "requirements.txt"
    extra = tmp_path / "requirements-test.txt"
    base.write_text("Django==5.2.19\n", encoding="utf-8")
    extra.write_text("-r requirements.txt\npytest==9.2.0\n", encoding="utf-8")
    first = venvs.requirements_digest(extra)
    base.write_text("Django==5.2.20\n", encoding="utf-8")
    assert venvs.requirements_digest(extra) != first


def test_stamp_decides_whether_to_rebuild(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.16.0\n", encoding="utf-8")
    venv = tmp_path / ".venv"
    stamp = venvs.stamp_for(requirements)
    assert not venvs.is_current(venv, stamp)
    python = venvs.venv_python(venv)
    python.parent.mkdir(parents=True)
    python.touch()
    (venv / venvs.STAMP).write_text(json.dumps(stamp), encoding="utf-8")
    assert venvs.is_current(venv, stamp)
    requirements.write_text("six==1.17.0\n", encoding="utf-8")
    assert not venvs.is_current(venv, venvs.stamp_for(requirements))


def test_install_commands_prefer_uv_and_fall_back_to_pip(tmp_path: Path) -> None:
    venv, req = tmp_path / ".venv", tmp_path / "requirements.txt"
    with_uv = venvs.install_commands(venv, req, "uv", base_python="py")
    assert with_uv[0][:2] == ["uv", "venv"]
    assert with_uv[1][:3] == ["uv", "pip", "install"]
    with_pip = venvs.install_commands(venv, req, None, base_python="py")
    assert with_pip[0] == ["py", "-m", "venv", str(venv)]
    assert with_pip[1][:4] == [str(venvs.venv_python(venv)), "-m", "pip", "install"]


def test_build_installs_once_then_skips(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n", encoding="utf-8")
    venv = tmp_path / ".venv"
    assert venvs.build(venv, requirements) is True
    assert venvs.venv_python(venv).exists()
    assert venvs.build(venv, requirements) is False
    assert venvs.build(venv, requirements, force=True) is True
