"""Broker and database URLs: masking passwords, telling local from remote."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "0.0.0.0"})
#: A URL's user and password, up to the last '@' of the URL (a password may hold '/', '?' or '@').
CREDENTIALS = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*@", re.IGNORECASE)


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


def is_local(url: str) -> bool:
    """Tell whether a database URL points at this machine (SQLite always does)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


def mask_text(text: str) -> str:
    """Mask the password of every URL in a block of text (command output kept in logs)."""
    return CREDENTIALS.sub(lambda m: f"{m.group('head')}***@", text)
