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

    with pytest.raises(UsageError, match=r"devstack\.lock_timeout must be a finite number of seconds"):
        config.from_config({"lock_timeout": "soon"}, tmp_path)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"broker-url": "amqp://x"}, "devstack.broker-url is unknown; did you mean devstack.broker_url"),
        ({"databses": {}}, "devstack.databses is unknown; did you mean devstack.databases"),
        ({"venv": None}, "devstack.venv must be text, got None"),
        ({"venv": "  "}, "devstack.venv must be text"),
        ({"lock_timeout": "abc"}, "devstack.lock_timeout must be a finite number of seconds, got 'abc'"),
        ({"lock_timeout": "nan"}, "finite number of seconds"),
        ({"stop_grace": float("inf")}, "finite number of seconds"),
        ({"stop_grace": -1}, "finite number of seconds"),
        ({"lock_timeout": True}, "finite number of seconds"),
        ({"allow_remote": "maybe"}, "devstack.allow_remote must be true or false"),
        ({"sync": "pigeon"}, "devstack.sync must be local or broker"),
        ({"databases": 5}, "devstack.databases must map service names to database URLs"),
        ({"databases": {"helpdsk": ""}}, "unknown service helpdsk; did you mean helpdesk"),
        ({"databases": {"auth": 5}}, "devstack.databases.auth must be a database URL"),
        ({"databases": {"auth": "sqlite:///"}}, "in-memory SQLite database"),
        ({"databases": {"auth": "sqlite://"}}, "in-memory SQLite database"),
        ({"seed": 5}, "devstack.seed must be a mapping"),
    ],
)
def test_every_bad_setting_is_one_sentence(section: dict[str, object], message: str) -> None:
    problems = config.validate(section)
    assert len(problems) == 1 and message in problems[0], problems
    with pytest.raises(config.UsageError) as caught:
        config.from_config(section, Path("."))
    assert caught.value.code == 2


def test_a_section_that_is_not_a_mapping() -> None:
    assert config.validate([1]) == ["The devstack setting must be a mapping of settings, got list (config)."]


def test_good_settings_pass() -> None:
    good = {"lock_timeout": 3, "stop_grace": "2.5", "allow_remote": "yes", "sync": "broker", "root": "/x"}
    assert config.validate({**good, "databases": {"auth": "sqlite:////tmp/a.db"}, "seed": {}}) == []


def test_the_source_of_a_setting_is_named() -> None:
    layers = {
        "_env": ({"devstack": {"lock_timeout": "abc"}}, "INVOKE_DEVSTACK_{KEY}"),
        "_project": ({"devstack": {"venv": None}}, "/repo/invoke.yaml"),
    }
    problems = config.validate({"lock_timeout": "abc", "venv": None}, layers)
    assert "(INVOKE_DEVSTACK_LOCK_TIMEOUT)" in problems[0] and "(/repo/invoke.yaml)" in problems[1]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("invoke.yaml", b"devstack:\n  lock_timeout: [\n", "is not valid YAML at line 3"),
        ("invoke.yaml", b"\x00\x01\xff", "is not a text file"),
        ("invoke.json", b"{nope", "is not valid JSON"),
        ("invoke.yml", b"- 1\n", "must hold a mapping of settings, not list"),
        ("invoke.yaml", b"devstack: [1]\n", "devstack in"),
        ("invoke.yaml", b"devstack:\n  databases: 5\n", "devstack.databases in"),
        ("invoke.yaml", b"devstack:\n  seed: 5\n", "devstack.seed in"),
    ],
)
def test_files_invoke_would_choke_on_are_caught_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, content: bytes, message: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / name).write_bytes(content)
    problems = config.precheck(tmp_path, {})
    assert len(problems) == 1 and message in problems[0] and name in problems[0]


def test_a_variable_for_a_whole_section_is_refused(tmp_path: Path) -> None:
    problems = config.precheck(tmp_path, {"INVOKE_DEVSTACK_DATABASES": "x"})
    assert problems == [
        "INVOKE_DEVSTACK_DATABASES cannot set a whole section; set one entry, such as "
        "INVOKE_DEVSTACK_DATABASES_HELPDESK."
    ]


def test_the_namespace_is_derived_from_the_checkout_folder(tmp_path: Path) -> None:
    one, two = tmp_path / "a" / "My Repo", tmp_path / "b" / "My Repo"
    derived = config.derive_project(one)
    assert derived.startswith("my-repo-") and config.PROJECT.fullmatch(derived)
    assert config.derive_project(one) == derived  # the same folder, the same namespace
    assert config.derive_project(two) != derived  # another clone of the same name differs
    assert config.Settings(root=one).queue("hdts.user.sync") == f"{derived}.hdts.user.sync"
    assert config.derive_project(tmp_path / "...").startswith("devstack-")  # nothing usable in the name


def test_the_project_setting_names_the_namespace_or_none(tmp_path: Path) -> None:
    chosen = config.from_config({"project": "team-ci_7"}, tmp_path)
    assert chosen.namespace() == "team-ci_7"
    assert chosen.queue("tts.role.sync") == "team-ci_7.tts.role.sync"
    bare = config.from_config({"project": ""}, tmp_path)  # a broker_url with its own virtual host
    assert bare.queue("tts.role.sync") == "tts.role.sync"
    assert config.from_config({}, tmp_path).namespace() == config.derive_project(tmp_path)


@pytest.mark.parametrize("bad", ["a.b", "-x", "x" * 64, "with space", 5, ["x"]])
def test_a_bad_project_is_one_sentence(tmp_path: Path, bad: object) -> None:
    with pytest.raises(config.UsageError, match=r"devstack\.project must be letters, digits"):
        config.from_config({"project": bad}, tmp_path)


def test_a_value_echoed_in_a_message_has_its_password_masked() -> None:
    url = "postgres://me:s3cr/et@127.0.0.1/db"
    problems = config.validate(
        {"broker_url": [url], "lock_timeout": url, "databases": {"helpdesk": url, "auth": 5}}
    )
    text = " ".join(problems)
    assert "s3cr" not in text and "postgres://me:***@127.0.0.1/db" in text
    assert "The password in devstack.databases.helpdesk (postgres://me:***@127.0.0.1/db) holds" in text


def test_a_mapping_where_a_value_belongs_is_named_before_invoke_merges_it(tmp_path: Path) -> None:
    (tmp_path / "invoke.yaml").write_text(
        "devstack:\n  backup_dir: {a: 'postgres://me:s3cret@h/db'}\n  databases: {helpdesk: {x: 1}}\n",
        encoding="utf-8",
    )
    problems = config.precheck(tmp_path, {})
    assert problems == [
        f"devstack.backup_dir in {tmp_path / 'invoke.yaml'} must be a single value, not a mapping; "
        "fix or remove it.",
        f"devstack.databases.helpdesk in {tmp_path / 'invoke.yaml'} must be a single value, not a mapping; "
        "fix or remove it.",
    ]
