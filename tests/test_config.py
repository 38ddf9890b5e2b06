from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Config

from devstack import config


def test_broker_url_precedence() -> None:
    env = {"CELERY_BROKER_URL": "amqp://env:x@h//"}
    assert config.resolve_broker_url("amqp://conf:x@h//", env) == "amqp://conf:x@h//"
    assert config.resolve_broker_url("", env) == "amqp://env:x@h//"
    assert config.resolve_broker_url("", {}) == config.DEFAULT_BROKER_URL


def test_from_config_reads_the_devstack_section(tmp_path: Path) -> None:
    settings = config.from_config(
        {"venv": "venv", "allow_remote": "yes", "databases": {"auth": "postgres://u@127.0.0.1/a"}},
        tmp_path,
    )
    assert settings.venv == "venv"
    assert settings.allow_remote is True
    assert settings.database_url("auth") == "postgres://u@127.0.0.1/a"
    assert settings.database_url("helpdesk") == ""


def test_invoke_env_beats_project_file_which_beats_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "invoke.yaml").write_text(
        "devstack:\n  broker_url: amqp://file:pw@filehost//\n  lock_timeout: 3\n", encoding="utf-8"
    )
    cfg = Config(project_location=str(tmp_path), defaults={"devstack": dict(config.DEFAULTS)})
    cfg.load_project()
    cfg.load_shell_env()
    assert config.from_config(cfg.devstack, tmp_path).broker_url == "amqp://file:pw@filehost//"

    monkeypatch.setenv("INVOKE_DEVSTACK_BROKER_URL", "amqp://env:pw@envhost//")
    monkeypatch.setenv("INVOKE_DEVSTACK_DATABASES_HELPDESK", "postgres://u@127.0.0.1/hd")
    cfg = Config(project_location=str(tmp_path), defaults={"devstack": dict(config.DEFAULTS)})
    cfg.load_project()
    cfg.load_shell_env()
    settings = config.from_config(cfg.devstack, tmp_path)
    assert settings.broker_url == "amqp://env:pw@envhost//"
    assert settings.lock_timeout == 3.0
    assert settings.database_url("helpdesk") == "postgres://u@127.0.0.1/hd"


def test_bad_durations_in_config_are_usage_errors(tmp_path: Path) -> None:
    from devstack.errors import UsageError

    with pytest.raises(UsageError, match=r"devstack\.lock_timeout must be a number of seconds"):
        config.from_config({"lock_timeout": "soon"}, tmp_path)
