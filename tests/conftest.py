"""Test-wide guards: no test may reach a non-loopback address."""

from __future__ import annotations

import ipaddress
import os
import socket
from datetime import UTC, datetime
from typing import Any

import pytest

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect


def _is_loopback(host: Any) -> bool:
    if host in ("localhost", None, ""):
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):
        raise OSError(f"network access blocked in tests: lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise OSError(f"network access blocked in tests: connect to {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Any:
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield
    socket.getaddrinfo = _real_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


def pytest_report_header() -> str:
    """Name the date the suite runs on; refuse a shifted run whose shift did not take (see tests/shifted.py)."""
    now = datetime.now(UTC)
    launched, expected = os.environ.get("SHIFTED_LAUNCH_TIME"), os.environ.get("SHIFTED_BY_SECONDS")
    if launched and expected:
        drift = now.timestamp() - float(launched) - float(expected)
        if not 0 <= drift < 3600:
            raise pytest.UsageError(f"the clock is not shifted as asked (FAKETIME={os.environ.get('FAKETIME')}): "
                                    "libfaketime did not load")
        return f"clock shifted by FAKETIME={os.environ.get('FAKETIME')}: now {now:%Y-%m-%d %H:%M} UTC"
    return f"clock: now {now:%Y-%m-%d %H:%M} UTC"
