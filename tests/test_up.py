"""``inv up`` / ``down`` / ``logs`` for real: dev servers on free ports, checked over HTTP, in a copy.

The copy's ``invoke.yaml`` gives every service a free port (never a developer's 8000/8002/8003)
and points the broker at a private virtual host.
"""

from __future__ import annotations

import http.cookiejar
import re
import socket
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devstack import registry
from devstack.workspace import copy_checkout
from tests.test_dead_letters import private_vhost
from tests.test_integration import REPO, inv, ok

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, opener: urllib.request.OpenerDirector | None = None) -> tuple[int, str, str]:
    """Status, final URL and body of a GET (no proxy)."""
    opener = opener or urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.geturl(), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, url, ""


def leftovers(repo: Path) -> list[str]:
    """Processes whose working directory is in the copy."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cwd = proc.cwd()
        except (psutil.Error, OSError):
            continue
        if cwd == str(repo) or cwd.startswith(str(repo) + "/"):
            found.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])}")
    return found


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {name: free_port() for name in registry.NAMES}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, ports: dict[str, int]) -> Iterator[Path]:
    with private_vhost() as url:
        copy = copy_checkout(REPO, tmp_path_factory.mktemp("up") / "repo")
        lines = "".join(f"    {name}: {port}\n" for name, port in ports.items())
        (copy / "invoke.yaml").write_text(
            f"devstack:\n  broker_url: {url}\n  ports:\n{lines}", encoding="utf-8"
        )
        try:
            yield copy
        finally:
            inv(copy, "down")


def url(ports: dict[str, int], name: str, path: str = "") -> str:
    return f"http://127.0.0.1:{ports[name]}/{path}"


def test_up_serves_every_service(repo: Path, ports: dict[str, int]) -> None:
    done = ok(repo, "up")
    for name in registry.NAMES:
        assert url(ports, name) in done.stdout
        assert url(ports, name, "admin/") in done.stdout
        status, _, body = get(url(ports, name, "health/"))
        assert status == 200, (name, body)
    assert "log in as admin@example.com with the password from 'inv password'" in done.stdout
    status = ok(repo, "status").stdout
    assert all(url(ports, name) in status for name in registry.NAMES)


def test_admin_login_on_auth(repo: Path, ports: dict[str, int]) -> None:
    password = ok(repo, "password").stdout.strip().splitlines()[-1]  # after the install pre-task's lines
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar)
    )
    login = url(ports, registry.PUBLISHER, "admin/login/?next=/admin/")
    status, _, page = get(login, opener)
    assert status == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": token.group(1),
            "username": "admin@example.com",
            "password": password,
            "next": "/admin/",
        }
    ).encode()
    request = urllib.request.Request(login, data=form, headers={"Referer": login})
    with opener.open(request, timeout=10) as response:
        final = response.geturl()
        body = response.read().decode("utf-8", "replace")
    assert final == url(ports, registry.PUBLISHER, "admin/"), final  # redirected to the admin index
    assert "Site administration" in body


def test_logs_are_prefixed(repo: Path) -> None:
    done = ok(repo, "logs")
    names = {line.split(" |", 1)[0].strip() for line in done.stdout.splitlines() if " | " in line}
    assert {f"{name}-server" for name in registry.NAMES} <= names
    only = ok(repo, "logs", "--name", "helpdesk-server").stdout.splitlines()
    assert only and all(line.startswith("helpdesk-server |") for line in only)


def test_up_twice_changes_nothing(repo: Path, ports: dict[str, int]) -> None:
    before = {p.name: p.read_text() for p in (repo / ".devstack" / "workers").glob("*.json")}
    done = ok(repo, "up")
    assert "everything already runs; nothing changed" in done.stdout
    assert "helpdesk-server already runs" in done.stdout
    after = {p.name: p.read_text() for p in (repo / ".devstack" / "workers").glob("*.json")}
    assert after == before


def test_seeding_while_up_runs_restarts_the_server(repo: Path, ports: dict[str, int]) -> None:
    done = ok(repo, "seed.helpdesk", "--tickets", "25")
    assert "stopped helpdesk-server" in done.stdout
    assert "started helpdesk-server again" in done.stdout
    status, _, _ = get(url(ports, "helpdesk", "health/"))
    assert status == 200


def test_down_leaves_no_process_and_a_taken_port_is_refused(repo: Path, ports: dict[str, int]) -> None:
    done = ok(repo, "down")
    assert "helpdesk-server" in done.stdout and "auth-relay" in done.stdout
    assert leftovers(repo) == []
    assert not list((repo / ".devstack" / "workers").glob("*.json"))
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's TIME_WAIT
        held.bind(("127.0.0.1", ports["workflow"]))
        held.listen()
        failed = inv(repo, "up")
    assert failed.returncode == 3, failed.stdout + failed.stderr
    message = failed.stderr.strip()
    taken = f"ERROR Port {ports['workflow']} of the workflow dev server is already taken by "
    assert message.startswith(taken)
    assert len(message.splitlines()) == 1
    assert leftovers(repo) == []
