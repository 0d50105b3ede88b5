"""Run the test suite with the whole process tree's clock shifted: `python -m tests.shifted +3650d [pytest args]`.

Every test must pass on any date, past or future. libfaketime (the `libfaketime` package in requirements-dev.txt
carries the library) is preloaded into pytest and every process it starts, so the bot processes of the
end-to-end and resilience tests and the local fakes all see the same shifted wall clock. The monotonic clock is
left alone: timeouts and rate pacing keep real durations.
"""

from __future__ import annotations

import os
import re
import sys
import time


def faketime_env(faketime: str) -> dict[str, str]:
    """This process's environment with libfaketime preloaded at `faketime` ("+3650d", or "@2026-12-07 10:00:00" for
    a clock that starts there); the monotonic clock is left alone."""
    import libfaketime

    env = dict(os.environ)
    lib = libfaketime._get_shared_lib("libfaketime.so.1")
    env["LD_PRELOAD"] = ":".join(x for x in (lib, env.get("LD_PRELOAD", "")) if x)
    env["FAKETIME"] = faketime
    env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    env["FAKETIME_NO_CACHE"] = "1"
    return env


def main(argv: list[str]) -> None:
    m = re.fullmatch(r"([+-]\d+)([dhms]?)", argv[0]) if argv else None
    if m is None:
        sys.exit("usage: python -m tests.shifted (+|-)N[d|h|m|s] [pytest arguments]   e.g. +3650d or -1200d")
    env = faketime_env(argv[0])
    # tests/conftest.py checks that the shift took: pytest's clock must be this far ahead of the launch.
    env["SHIFTED_LAUNCH_TIME"] = str(time.time())
    env["SHIFTED_BY_SECONDS"] = str(int(m.group(1)) * {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}[m.group(2)])
    os.execve(sys.executable, [sys.executable, "-m", "pytest", *argv[1:]], env)


if __name__ == "__main__":
    main(sys.argv[1:])
