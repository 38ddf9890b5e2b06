"""Shared fixtures: a settings object rooted in a temporary folder with the real registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.config import Settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    for name in ("auth", "workflow", "helpdesk"):
        (tmp_path / "services" / name).mkdir(parents=True)
    return Settings(root=tmp_path)
