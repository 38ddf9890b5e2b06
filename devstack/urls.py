"""Broker and database URLs: masking passwords, telling local from remote."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "0.0.0.0"})
#: A URL's user and password, up to the last '@' of the URL (a password may hold '/', '?' or '@').
CREDENTIALS = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*@", re.IGNORECASE)


#: A '%' that does not start a percent-encoded byte.
LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def unencoded_password(url: str) -> bool:
    """Tell whether a URL's user part holds characters the URL must percent-encode.

    A '/', '?' or '#' before the last '@' ends the host part early, so every URL reader takes a
    piece of the password for the host; a '%' must start an encoded byte. (An '@' or ':' in the
    password is read right up to the last '@', but encoding them too is what drivers expect.)
    """
    _, sep, rest = url.strip().partition("://")
    userinfo = rest.rpartition("@")[0] if sep else ""
    return any(c in userinfo for c in "/?#") or bool(LONE_PERCENT.search(userinfo))


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``.

    Everything between the first ':' of the user part and the last '@' is hidden, so a
    password with an unencoded '/', '?', '#' or '@' never shows, even in a URL that does not
    parse.
    """
    scheme, sep, rest = url.partition("://")
    head = f"{scheme}{sep}" if sep else ""
    rest = rest if sep else url
    userinfo, at, where = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not at or not colon or "/" in user:
        return url
    return f"{head}{user}:***@{where}"


#: Schemes read by PostgreSQL's client library, which also honours ``?host=``, ``PGHOST`` etc.
POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "pgsql", "postgis", "psql"})


class NotProvablyLocal(ValueError):
    """Where a database URL connects cannot be told without connecting."""


def connect_hosts(url: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Return every host the database driver may connect to for ``url`` ('' means its default).

    For PostgreSQL that is the URL's hosts (libpq takes a comma-separated list), the ``host``
    and ``hostaddr`` query parameters, and, where the URL names no host, ``PGHOST`` and
    ``PGHOSTADDR``. A service definition (``?service=`` or ``PGSERVICE``) hides the host:
    :class:`NotProvablyLocal`. A malformed URL raises ``ValueError``.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower().split("+")[0]
    netloc = parts.netloc.rpartition("@")[2]
    if scheme not in POSTGRES_SCHEMES:
        return [parts.hostname or ""]
    hosts = [_host(h) for h in netloc.split(",")] if netloc else []
    query = {k.lower(): v for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    for key in ("host", "hostaddr"):
        for value in query.get(key, []):
            hosts += [h.strip() for h in value.split(",")]
    if not any(hosts):
        hosts += [h.strip() for k in ("PGHOST", "PGHOSTADDR") for h in environ.get(k, "").split(",")]
    if query.get("service") or environ.get("PGSERVICE"):
        raise NotProvablyLocal("it uses a PostgreSQL service definition (service= or PGSERVICE)")
    return [h for h in hosts if h] or [""]


def _host(item: str) -> str:
    """The host of one ``host[:port]`` item of a netloc, brackets removed."""
    item = unquote(item.strip())
    if item.startswith("["):
        end = item.find("]")
        if end < 0:
            raise ValueError(f"the IPv6 address in '{item}' has no closing bracket")
        return item[1:end]
    return item.rsplit(":", 1)[0] if item.count(":") == 1 else item


def is_local_host(host: str) -> bool:
    """Tell whether a host is this machine: empty (the default socket), a socket folder, loopback."""
    name = host.strip().lower().rstrip(".")
    if name in LOCAL_HOSTS or name.startswith(("/", "@")) or name == "localhost.localdomain":
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_local(url: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Tell whether a database URL can only reach this machine (SQLite always does)."""
    if urlsplit(url).scheme.lower().startswith("sqlite"):
        return True
    try:
        return all(is_local_host(h) for h in connect_hosts(url, environ))
    except NotProvablyLocal:
        return False


def mask_text(text: str) -> str:
    """Mask the password of every URL in a block of text (command output kept in logs)."""
    return CREDENTIALS.sub(lambda m: f"{m.group('head')}***@", text)
