"""Per-service virtualenvs: Windows and POSIX layouts, lock files, install stamps, uv or pip.

Each service pins its direct dependencies in ``requirements.txt`` and the whole resolved tree in
``requirements.lock`` beside it (see :func:`compile_command`). A virtualenv is built from the lock:
with uv by ``uv pip sync``, which also removes what the lock no longer lists; without uv by
``pip install -r``, after which the runner uninstalls the distributions that the lock does not
list. Without a lock file, the requirements file itself is installed (uv or pip ``install``).

A virtualenv is current when its stamp (the requirements and lock digests and the interpreter)
matches and the distributions installed in it are exactly the lock's, each with its top-level
modules and packages present. A build checks that with :func:`installed_drift` (``*.dist-info``
folders against the lock's pins and markers) and records what it verified in the stamp file; the
no-op check compares the virtualenv with that record (:func:`matches_snapshot`: a folder scan,
the ``METADATA`` heads and a few ``stat`` calls, no process, no lock parsing).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack.errors import StepError

if TYPE_CHECKING:  # packaging is imported only to (re)build: a no-op check needs none of it
    from packaging.requirements import Requirement

STAMP = "devstack-stamp.json"
#: The oldest Python the services run on; the locks are resolved for it and every newer one.
LOCK_PYTHON = "3.11"
#: How every lock file is compiled: for all platforms (Windows-only pins carry a marker) and
#: with the hash of every file, which uv and pip both check when they install.
LOCK_OPTIONS = ("--python-version", LOCK_PYTHON, "--universal", "--generate-hashes")
#: Installed by ``python -m venv`` itself: never an extra, never uninstalled.
SEED = frozenset({"pip", "setuptools", "wheel"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SEPARATORS = re.compile(r"[-_.]+")
#: The top-level folders and files that a ``RECORD`` lists (a literal newline first is fastest).
_RECORD_PACKAGE = re.compile(r"\n([^/,\n]+)/")
_RECORD_MODULE = re.compile(r"\n([^/,\n]+),")


def canonical(name: str) -> str:
    """Normalize a distribution name as PEP 503 does (``Django``, ``typing_extensions``)."""
    return _SEPARATORS.sub("-", name).lower()


def venv_python(venv: Path, windows: bool | None = None) -> Path:
    """Return the interpreter of ``venv`` (``Scripts\\python.exe`` on Windows)."""
    if windows if windows is not None else os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def lock_path(requirements: Path) -> Path:
    """Return the lock file of ``requirements``: ``requirements.txt`` -> ``requirements.lock``."""
    return requirements.with_suffix(".lock")


def install_source(requirements: Path) -> Path:
    """Return the file a virtualenv is installed from: the lock, or the requirements without one."""
    lock = lock_path(requirements)
    return lock if lock.is_file() else requirements


def is_lock(path: Path) -> bool:
    """Tell whether ``path`` holds a full pinned tree (``uv pip sync`` needs one)."""
    return path.suffix == ".lock"


def compile_command(requirements: Path, uv: str = "uv") -> list[str]:
    """Return the command line that (re)generates the lock file of ``requirements``."""

    def shown(path: Path) -> str:
        try:
            return path.resolve().relative_to(Path.cwd()).as_posix()
        except ValueError:
            return str(path)

    return [
        uv,
        "pip",
        "compile",
        shown(requirements),
        "-o",
        shown(lock_path(requirements)),
        *LOCK_OPTIONS,
    ]


def requirements_digest(requirements: Path) -> str:
    """Hash a requirements file together with every ``-r`` file it includes."""
    digest = hashlib.sha256()
    seen: set[Path] = set()

    def feed(path: Path) -> None:
        path = path.resolve()
        if path in seen:
            return
        seen.add(path)
        text = path.read_text(encoding="utf-8")
        digest.update(path.name.encode() + b"\0" + text.encode())
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in {"-r", "--requirement"}:
                feed(path.parent / parts[1])

    feed(requirements)
    return digest.hexdigest()


def stamp_for(requirements: Path, base_python: str = sys.executable) -> dict[str, str]:
    """Describe what a virtualenv is built from: requirements and lock digests, interpreter.

    The interpreter is named by its real path, so ``inv`` (``.venv/bin/python3``) and
    ``python -m invoke`` (``.venv/bin/python``) agree.
    """
    lock = lock_path(requirements)
    return {
        "requirements": requirements_digest(requirements),
        "lock": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else "",
        "python": f"{os.path.realpath(base_python)} {'.'.join(map(str, sys.version_info[:3]))}",
    }


# -- requirement and lock files -------------------------------------------------------------


def _logical_lines(text: str) -> Iterator[str]:
    """Yield a requirements file's lines, continuations joined, comments and blanks dropped."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            line = ""
        elif " #" in line:
            line = line.split(" #", 1)[0].rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            yield line
    if pending.strip():
        yield pending.strip()


def read_requirements(path: Path, problems: list[str] | None = None) -> list[Requirement]:
    """Parse a requirements or lock file, following ``-r`` includes; skip other options.

    Lines that do not parse are reported in ``problems`` when given, else raise ``StepError``.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    found: list[Requirement] = []
    seen: set[Path] = set()

    def read(file: Path) -> None:
        file = file.resolve()
        if file in seen:
            return
        seen.add(file)
        for line in _logical_lines(file.read_text(encoding="utf-8")):
            parts = line.split()
            if parts[0] in {"-r", "--requirement"} and len(parts) == 2:
                read(file.parent / parts[1])
                continue
            if line.startswith("-"):
                continue  # -c, -e, --index-url ...: not a pin of this file
            text = line.split(" --", 1)[0].strip()  # drop per-line options such as --hash
            try:
                found.append(Requirement(text))
            except InvalidRequirement as exc:
                message = f"{file.name}: cannot parse {text!r} ({exc})"
                if problems is None:
                    raise StepError(message + ".") from exc
                problems.append(message)

    read(path)
    return found


def _applies(requirement: Requirement) -> bool:
    """Tell whether ``requirement``'s environment marker holds for this interpreter."""
    if requirement.marker is None:
        return True
    from packaging.markers import UndefinedComparison, UndefinedEnvironmentName

    try:
        return requirement.marker.evaluate({"extra": ""})
    except (UndefinedComparison, UndefinedEnvironmentName):  # let the installer decide
        return True


def _top_level_of(lock: Path, requirements: Path) -> set[str]:
    """Return the names that ``lock``'s annotations say ``requirements`` asked for directly.

    uv and pip-tools write ``# via -r <file>`` (on one line or in a list) under each pin; a lock
    generated with ``--no-annotate`` yields an empty set.
    """
    included = {requirements.name}
    for line in _logical_lines(requirements.read_text(encoding="utf-8")):
        parts = line.split()
        if parts[0] in {"-r", "--requirement"} and len(parts) == 2:
            included.add(Path(parts[1]).name)
    direct: set[str] = set()
    current: str | None = None
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        pin = _NAME.match(line)
        if pin:
            current = canonical(pin.group(0))
        words = line.partition("#")[2].replace(",", " ").split()
        if current and any(a == "-r" and Path(b).name in included for a, b in itertools.pairwise(words)):
            direct.add(current)
    return direct


def lock_problems(requirements: Path, lock: Path | None = None) -> list[str]:
    """Say how ``lock`` disagrees with ``requirements``; empty when the lock is up to date.

    Every requirement must be pinned in the lock at a version it allows, every lock line must be
    an exact ``==`` pin, and a package that the lock's annotations call a direct requirement must
    still be one (a requirement dropped without regenerating the lock).
    """
    lock = lock or lock_path(requirements)
    problems: list[str] = []
    wanted = read_requirements(requirements, problems)
    pinned: dict[str, str] = {}
    for pin in read_requirements(lock, problems):
        specs = list(pin.specifier)
        if len(specs) != 1 or specs[0].operator not in {"==", "==="}:
            problems.append(f"{lock.name}: {pin} is not an exact == pin")
            continue
        pinned[canonical(pin.name)] = specs[0].version
    for requirement in wanted:
        name = canonical(requirement.name)
        if name not in pinned:
            problems.append(f"{requirement} is not in {lock.name}")
        elif not requirement.specifier.contains(pinned[name], prereleases=True):
            problems.append(f"{lock.name} pins {name}=={pinned[name]}, but {requirement} is asked")
    asked = {canonical(r.name) for r in wanted}
    for name in sorted(_top_level_of(lock, requirements) - asked):
        problems.append(f"{lock.name} still pins {name} for {requirements.name}, which no longer lists it")
    return problems


def check_lock(requirements: Path) -> None:
    """Raise ``StepError`` when ``requirements``' lock file exists and no longer matches it."""
    lock = lock_path(requirements)
    if not lock.is_file():
        return
    problems = lock_problems(requirements, lock)
    if problems:
        raise StepError(
            f"{lock} does not match {requirements.name}: {'; '.join(problems)}. Regenerate it: "
            + " ".join(compile_command(requirements))
        )


# -- what a virtualenv holds ----------------------------------------------------------------


def site_packages(venv: Path) -> list[Path]:
    """Return the site-packages folders of ``venv`` for this interpreter's layout."""
    paths = {"base": str(venv), "platbase": str(venv)}
    folders = [Path(sysconfig.get_path(key, scheme="venv", vars=paths)) for key in ("purelib", "platlib")]
    return list(dict.fromkeys(folders))


@dataclass(frozen=True)
class Installed:
    """One ``*.dist-info`` folder: the distribution's name and version, and what must exist of it."""

    folder: str  # the *.dist-info folder, relative to the virtualenv
    name: str
    version: str
    paths: tuple[str, ...]  # relative to the virtualenv; empty when RECORD is missing
    intact: bool


def _metadata(dist_info: Path) -> tuple[str, str] | None:
    """Read ``Name`` and ``Version`` from the head of a ``METADATA`` file."""
    name = version = ""
    try:
        with (dist_info / "METADATA").open(encoding="utf-8", errors="replace") as file:
            for line in file:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key == "Name":
                    name = value.strip()
                elif key == "Version":
                    version = value.strip()
    except OSError:
        return None
    return (name, version) if name and version else None


def _top_level_paths(dist_info: Path) -> set[str] | None:
    """Return what must exist of a distribution, after its ``RECORD``; None without a ``RECORD``.

    That is each top-level module, and each top-level package's ``__init__.py`` (its folder for a
    namespace package): a few ``stat`` calls per distribution, however many files it has.
    """
    try:
        record = "\n" + (dist_info / "RECORD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    paths = set(_RECORD_MODULE.findall(record))
    for top in set(_RECORD_PACKAGE.findall(record)):
        if top in {"..", "__pycache__"} or top.endswith((".dist-info", ".data")):
            continue
        init = f"{top}/__init__.py"
        paths.add(init if f"\n{init}," in record else top)
    return paths


def _relative(path: Path, venv: Path) -> str:
    return Path(os.path.relpath(path, venv)).as_posix()


def installed(venv: Path) -> list[Installed]:
    """List the distributions installed in ``venv`` by reading their ``*.dist-info`` folders."""
    found: list[Installed] = []
    for folder in site_packages(venv):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith(".dist-info") or not entry.is_dir():
                continue
            dist_info = Path(entry.path)
            where = _relative(dist_info, venv)
            head = _metadata(dist_info)
            tops = _top_level_paths(dist_info)
            if head is None or tops is None:
                found.append(Installed(where, canonical(entry.name[:-10].split("-")[0]), "", (), False))
                continue
            paths = tuple(sorted(_relative(folder / p, venv) for p in tops))
            intact = all(os.path.exists(venv / p) for p in paths)
            found.append(Installed(where, canonical(head[0]), head[1], paths, intact))
    return found


@dataclass(frozen=True)
class Drift:
    """How the distributions installed in a virtualenv differ from the file it is built from."""

    missing: tuple[str, ...] = ()  # asked for but not installed, or at another version
    extra: tuple[str, ...] = ()  # installed but not in the lock (only known with a lock)
    broken: tuple[str, ...] = ()  # installed, but files are gone or it is installed twice

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.broken)

    def describe(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (("missing", self.missing), ("extra", self.extra), ("broken", self.broken))
            if names
        ]
        return "; ".join(parts) or "none"


def installed_drift(venv: Path, source: Path) -> Drift:
    """Compare what ``venv`` holds with ``source`` (a lock, or a requirements file).

    With a lock every installed distribution must be pinned there (``pip``, ``setuptools`` and
    ``wheel`` excepted); with a plain requirements file only its own requirements are checked.
    """
    wanted = [r for r in read_requirements(source) if _applies(r)]
    have: dict[str, list[Installed]] = {}
    for dist in installed(venv):
        have.setdefault(dist.name, []).append(dist)
    missing = []
    for requirement in wanted:
        dists = have.get(canonical(requirement.name), [])
        if not any(requirement.specifier.contains(d.version, prereleases=True) for d in dists if d.version):
            missing.append(requirement.name)
    broken = sorted(name for name, dists in have.items() if len(dists) > 1 or not dists[0].intact)
    extra: list[str] = []
    if is_lock(source):
        asked = {canonical(r.name) for r in wanted}
        extra = sorted(name for name in have if name not in asked and name not in SEED)
    return Drift(tuple(sorted(missing)), tuple(extra), tuple(broken))


def snapshot(dists: list[Installed]) -> dict[str, Any]:
    """Record what a verified virtualenv holds, for :func:`is_current` to compare cheaply."""
    return {
        "dists": {d.folder: [d.name, d.version] for d in dists},
        "paths": sorted(p for d in dists for p in d.paths),
    }


def matches_snapshot(venv: Path, recorded: dict[str, Any]) -> bool:
    """Tell whether ``venv`` still holds what :func:`snapshot` recorded, reading no ``RECORD``.

    The same ``*.dist-info`` folders, each ``METADATA`` with the same name and version, and
    every top-level module and package present.
    """
    dists = recorded.get("dists")
    paths = recorded.get("paths")
    if not isinstance(dists, dict) or not isinstance(paths, list):
        return False
    found: dict[str, list[str]] = {}
    for folder in site_packages(venv):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(".dist-info"):
                head = _metadata(Path(entry.path))
                where = _relative(Path(entry.path), venv)
                found[where] = [canonical(head[0]), head[1]] if head else []
    return found == dists and all(os.path.exists(venv / p) for p in paths)


def is_current(venv: Path, stamp: dict[str, str], source: Path | None = None) -> bool:
    """Tell whether ``venv`` was built from exactly ``stamp`` and still holds what ``source`` pins.

    Without ``source`` only the stamp and the interpreter are checked. With it, the virtualenv
    must still hold what the build verified against ``source`` (the snapshot in the stamp file,
    see :func:`matches_snapshot`), or, for a stamp without a snapshot, match ``source`` itself.
    """
    try:
        recorded = json.loads((venv / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or {k: recorded.get(k) for k in stamp} != stamp:
        return False
    if not venv_python(venv).exists():
        return False
    if source is None:
        return True
    if isinstance(recorded.get("installed"), dict):
        return matches_snapshot(venv, recorded["installed"])
    return not installed_drift(venv, source)


# -- building -------------------------------------------------------------------------------


@functools.cache
def find_uv() -> str | None:
    """Return the uv executable, from PATH or from the installed ``uv`` package."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    try:
        return str(find_uv_bin())
    except FileNotFoundError:
        return None


def install_commands(
    venv: Path,
    source: Path,
    uv: str | None,
    base_python: str = sys.executable,
    *,
    clear: bool = False,
    force: bool = False,
    drift: Drift | None = None,
) -> list[list[str]]:
    """Return the command lines that build ``venv`` from ``source`` (a lock or requirements file).

    With uv a lock is synced (``uv pip sync`` also removes what the lock does not list) and a
    requirements file is installed; ``clear`` empties the virtualenv first, and the distributions
    that ``drift`` finds broken are reinstalled. With pip, ``drift`` (what the existing virtualenv
    lacks) keeps the commands to what is needed: none to create the virtualenv, ``install -r``
    only when something is missing, ``--force-reinstall --no-deps`` for the broken ones, and
    ``force`` reinstalls everything; extras are uninstalled by :func:`build` afterwards. Without
    ``drift`` the virtualenv is created (``clear``: recreated) and ``source`` installed.

    Packages are compiled to bytecode at install time (pip does it by default), so every later
    service process starts fast even where ``PYTHONDONTWRITEBYTECODE`` is set. uv copies files
    instead of hard-linking them from its cache: a file edited inside one virtualenv would
    otherwise change the cache and every other virtualenv linked to it, and no reinstall could
    bring the original back.
    """
    python = str(venv_python(venv))
    broken = sorted(drift.broken) if drift and not clear else []
    if uv:
        existing = "--clear" if clear else "--allow-existing"
        if is_lock(source):
            install = ["sync", "--allow-empty-requirements", str(source)]
        else:
            install = ["install", "-r", str(source)]
        return [
            [uv, "venv", "--quiet", existing, "--python", base_python, str(venv)],
            [
                uv,
                "pip",
                install[0],
                "--quiet",
                "--compile-bytecode",
                "--link-mode=copy",
                *(["--reinstall"] if force and not clear else []),
                *(f"--reinstall-package={name}" for name in broken),
                "--python",
                python,
                *install[1:],
            ],
        ]
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if drift is None:
        return [
            [base_python, "-m", "venv", *(["--clear"] if clear else []), str(venv)],
            [*pip, *(["--force-reinstall"] if force else []), "-r", str(source)],
        ]
    if force:
        return [[*pip, "--force-reinstall", "-r", str(source)]]
    commands = [[*pip, "-r", str(source)]] if drift.missing else []
    pins = {canonical(r.name): str(r) for r in read_requirements(source) if _applies(r)}
    again = [pins[name] for name in map(canonical, broken) if name in pins]
    if again:  # a broken extra is uninstalled instead
        commands.append([*pip, "--force-reinstall", "--no-deps", *again])
    return commands


def uninstall_command(venv: Path, names: Iterable[str]) -> list[str]:
    """Return the pip command line that removes ``names`` from ``venv`` (the pip fallback's sync)."""
    python = str(venv_python(venv))
    return [python, "-m", "pip", "uninstall", "--yes", "--quiet", "--disable-pip-version-check", *names]


def _run(command: list[str], source: Path) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise StepError(
            f"Installing {source} failed ({last}); check that the package index "
            "is reachable, then rerun with --force."
        )


def needs_build(venv: Path, requirements: Path, force: bool = False) -> bool:
    """Tell whether :func:`build` would install anything into ``venv`` (reads only)."""
    return force or not is_current(venv, stamp_for(requirements), install_source(requirements))


def build(venv: Path, requirements: Path, force: bool = False) -> bool:
    """Build ``venv`` unless it is current; return whether anything was installed.

    ``requirements`` is the service's ``requirements.txt``; the lock file beside it is what gets
    installed when there is one (see :func:`install_source`). ``force`` rebuilds for real: with
    uv from an empty virtualenv, with pip by reinstalling every pinned distribution. A virtualenv
    made for another interpreter is recreated. Raises ``StepError`` when the lock no longer
    matches the requirements, when an install fails, or when the virtualenv still differs from
    what it was built from afterwards (so that no stamp is written for it).
    """
    if not needs_build(venv, requirements, force):
        return False
    stamp = stamp_for(requirements)
    source = install_source(requirements)
    check_lock(requirements)
    uv = find_uv()
    usable = venv_python(venv).exists() and venv_version(venv) == sys.version_info[:2]
    clear = venv.exists() and (not usable or (force and uv is not None))
    drift = installed_drift(venv, source) if usable and not clear else None
    if drift is not None and not uv and not any(d.name == "pip" for d in installed(venv)):
        drift = None  # made by uv, so without pip: python -m venv adds it
    (venv / STAMP).unlink(missing_ok=True)
    for command in install_commands(venv, source, uv, clear=clear, force=force, drift=drift):
        _run(command, source)
    left = installed_drift(venv, source)
    if left.extra and not uv:
        _run(uninstall_command(venv, left.extra), source)
        left = installed_drift(venv, source)
    if left:
        raise StepError(
            f"{venv} still differs from {source.name} after installing ({left.describe()}); "
            "rerun with --force."
        )
    record = {**stamp, "installed": snapshot(installed(venv))}
    (venv / STAMP).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return True


def venv_version(venv: Path) -> tuple[int, int] | None:
    """Return the Python major and minor version that ``pyvenv.cfg`` says ``venv`` was made for."""
    try:
        lines = (venv / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() in {"version", "version_info"}:
            parts = value.strip().split(".")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                return int(parts[0]), int(parts[1])
    return None
