"""Broker and database URLs: masking passwords, telling local from remote."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "0.0.0.0"})
CREDENTIALS = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port: mask by pattern instead
        return mask_text(url)
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def is_local(url: str) -> bool:
    """Tell whether a database URL points at this machine (SQLite always does)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


def mask_text(text: str) -> str:
    """Mask the password of every URL in a block of text (command output kept in logs)."""
    return CREDENTIALS.sub(lambda m: f"{m.group('head')}***@", text)
