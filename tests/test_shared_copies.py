"""Files every consumer service keeps a copy of must stay byte-identical.

Each service folder is installed and run on its own (its own requirements, its own
virtualenv), so code the consumers share is copied rather than packaged; this test is what
keeps the copies from drifting. Edit one copy, then copy it over the others.

auth's ``identity/tests/broker.py`` is not in the group: it serves the publisher's relay tests
(purging and reading the real sync queues through ``identity.relay``), while the consumers'
copy starts Celery workers on private queues and runs ``wait_events``.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import pytest

from devstack import registry

REPO = Path(__file__).resolve().parents[1]

#: Paths inside each consumer's Django app package (``services/<name>/<app>/``, or its ``config/``
#: package: ``queues.py``) that are shared.
SHARED_BY_CONSUMERS = ("waiting.py", "batching.py", "tests/broker.py", "accounts.py", "queues.py")
#: Paths inside every service's app package, the publisher's too, that are shared.
SHARED_BY_ALL = ("passwords.py",)


def copies(path: str) -> list[Path]:
    """Return each sharing service's copy of ``path``; fail when one of them has none or several."""
    found: list[Path] = []
    for consumer in registry.SERVICES if path in SHARED_BY_ALL else registry.consumers():
        mine = sorted(consumer.folder(REPO).glob(f"*/{path}"))
        mine = [p for p in mine if ".venv" not in p.parts]
        assert len(mine) == 1, (
            f"The {consumer.name} service should hold exactly one */{path}, found {len(mine)}: "
            "copy it from another consumer."
        )
        found += mine
    return found


@pytest.mark.parametrize("path", [*SHARED_BY_CONSUMERS, *SHARED_BY_ALL])
def test_consumers_share_identical_copies(path: str) -> None:
    files = copies(path)
    assert len(files) >= 2, f"{path} is shared by fewer than two consumers; drop it from the list."
    reference = files[0]
    expected = reference.read_bytes()
    for other in files[1:]:
        if other.read_bytes() == expected:
            continue
        diff = difflib.unified_diff(
            reference.read_text(encoding="utf-8").splitlines(),
            other.read_text(encoding="utf-8").splitlines(),
            str(reference.relative_to(REPO)),
            str(other.relative_to(REPO)),
            lineterm="",
        )
        shown = "\n".join(list(diff)[:80])
        pytest.fail(
            f"{other.relative_to(REPO)} has drifted from {reference.relative_to(REPO)}; "
            f"make the copies identical again:\n{shown}"
        )


def test_a_drifted_copy_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    consumers = registry.consumers()
    for number, consumer in enumerate(consumers):
        app = consumer.folder(tmp_path) / "app"
        app.mkdir(parents=True)
        (app / "waiting.py").write_text(f"X = {min(number, 1)}\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    with pytest.raises(pytest.fail.Exception) as caught:
        test_consumers_share_identical_copies("waiting.py")
    message = str(caught.value)
    drifted = Path("services", consumers[1].name, "app", "waiting.py")
    assert message.startswith(f"{drifted} has drifted from ")
    assert "\n-X = 0\n+X = 1" in message
