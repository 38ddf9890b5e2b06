"""Termination signals: handled like Ctrl-C where the platform has them, restored afterwards."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from devstack import signals


def test_handlers_are_installed_for_the_signals_the_platform_has_and_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with signals.handled(("SIGTERM", "SIGNOTHERE")) as names:
        assert names == ["SIGTERM"]
        assert signal.getsignal(signal.SIGTERM) is signals._stop
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill delivers SIGTERM as a kill on Windows")
def test_sigterm_raises_terminated_with_its_name() -> None:
    with pytest.raises(signals.Terminated) as caught, signals.handled():
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the next bytecode boundary
    assert caught.value.signum == signal.SIGTERM and caught.value.name == "SIGTERM"
    assert isinstance(caught.value, KeyboardInterrupt)  # every cleanup for Ctrl-C runs for it too


def test_windows_names_are_looked_up_not_assumed() -> None:
    assert "SIGBREAK" in signals.NAMES and "SIGHUP" in signals.NAMES
    with signals.handled(("SIGBREAK",)) as names:
        assert names == (["SIGBREAK"] if hasattr(signal, "SIGBREAK") else [])
