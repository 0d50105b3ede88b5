"""The peak RSS of a command, measured from a small process of its own.

The kernel's ru_maxrss of a child also counts what the child had mapped before it called exec, which after a
fork (or vfork) is the whole process that started it: a bot started from a pytest or benchmark process that
holds 150 MB of test mail "peaks" at 150 MB before it has read anything. So a bare interpreter starts the command
and reports the figure; its own few MB are the floor of the measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_STARTER = """
import json, os, resource, subprocess, sys
for name, value in json.loads(sys.argv[1]).items():
    resource.setrlimit(getattr(resource, name), (value, value))
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}))
"""


@dataclass(frozen=True)
class Measured:
    returncode: int
    stderr: str
    peak_mib: float


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
                 limits: dict[str, int] | None = None) -> Measured:
    """Run cmd (its stdout discarded) and return its exit code, its stderr and its peak RSS in MiB.

    limits: resource limits for it, by name ({"RLIMIT_AS": 1 << 30}).
    """
    done = subprocess.run([sys.executable, "-S", "-c", _STARTER, json.dumps(limits or {}), *cmd], cwd=cwd, env=env,
                          capture_output=True, timeout=timeout)
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return Measured(result["code"], done.stderr.decode("utf-8", "replace"), result["maxrss_kib"] / 1024)
