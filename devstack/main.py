"""The runner's ``inv`` (and ``invoke``) command: Invoke's program, run from any folder of a checkout.

Invoke takes the first ``tasks.py`` it meets walking up from the current folder. Inside a
service's package (``services/helpdesk/helpdesk``) that is the service's Celery module, which
Celery's autodiscovery needs under that name; Invoke imports it with the runner's Python and
fails. Invoke's settings that could point elsewhere (``tasks.collection_name``,
``tasks.search_root``) are read before any file of the repository: from ``~/.invoke.yaml``,
``/etc/invoke.yaml``, ``-c``/``-r`` or the environment, while the project's ``invoke.yaml`` is
only found next to the collection it has yet to find. So the runner brings its own entry point:
the same program, whose loader walks up to the checkout's root (the folder holding ``tasks.py``
beside the ``devstack`` package) and loads that collection, project config and all. Outside a
checkout it searches as Invoke does.

pip installs the project's ``inv`` and ``invoke`` after Invoke's own (a package's scripts are
written after its dependencies'). ``python -m devstack`` runs the same program.
"""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec
from importlib.util import spec_from_file_location
from pathlib import Path

from invoke import __version__
from invoke.exceptions import Exit, ParseError
from invoke.loader import FilesystemLoader
from invoke.program import Program

from devstack.console import quiet_stdout
from devstack.errors import UsageError
from devstack.flags import usage_sentence


def checkout_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding the runner: ``tasks.py`` beside ``devstack/``."""
    for folder in (start, *start.parents):
        if (folder / "tasks.py").is_file() and (folder / "devstack" / "__init__.py").is_file():
            return folder
    return None


class CheckoutLoader(FilesystemLoader):
    """Find the checkout's ``tasks.py`` from any folder in it, before a service's Celery ``tasks.py``."""

    def find(self, name: str) -> ModuleSpec | None:
        root = checkout_root(Path(self.start).resolve()) if name == "tasks" else None
        if root is None:
            return super().find(name)
        beside(root)
        return spec_from_file_location(name, root / "tasks.py")


def beside(root: Path) -> None:
    """Let the checkout's tasks.py import the devstack package beside it, as under Invoke's own inv.

    This program was imported from the package of the virtualenv's install, which may be another
    checkout's: forget it, so that ``import devstack`` finds ``root`` first on ``sys.path``.
    """
    loaded = sys.modules.get("devstack")
    origin = getattr(loaded, "__file__", None)
    if origin is None or Path(origin).resolve().parent == (root / "devstack").resolve():
        return
    for name in [n for n in sys.modules if n == "devstack" or n.startswith("devstack.")]:
        del sys.modules[name]


class RunnerProgram(Program):
    """Invoke's program with the checkout loader; ``--help <unknown task>`` is exit 2 like any bad name.

    A reader that leaves early (``inv --list | head -3``) ends the output quietly, as the tasks'
    own output does, instead of a BrokenPipeError traceback from Invoke's printing.
    """

    def run(self, argv: list[str] | None = None, exit: bool = True) -> None:
        try:
            super().run(argv, exit)
        except BrokenPipeError:
            quiet_stdout()

    def parse_cleanup(self) -> None:
        try:
            super().parse_cleanup()
        except ParseError as exc:
            raise Exit(f"ERROR {usage_sentence(exc)}", code=UsageError.code) from None


program = RunnerProgram(
    name="Invoke",
    binary="inv[oke]",
    binary_names=["invoke", "inv"],
    version=__version__,
    loader_class=CheckoutLoader,
)
