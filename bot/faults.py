"""Crash points for the crash-safety tests: the process kills itself at a named step of the pipeline.

TRIAGE_CRASH_AT="<step>:<n>" sends SIGKILL to this process the n-th time it passes <step> (n defaults to 1).
SIGKILL, not an exception: nothing may run after it (no finally, no rollback, no flush), exactly as when the
machine loses power or the OOM killer strikes. Unset (the normal case) every call returns at once.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "TRIAGE_CRASH_AT"
STEPS = ("after_classify", "after_commit", "after_draft", "after_modify", "after_trash", "after_audit_write",
         "after_notify", "after_crm")

_hits: Counter[str] = Counter()


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(ENV, "")
    if not spec:
        return None
    step, _, count = spec.partition(":")
    if step not in STEPS:
        raise ValueError(f"{ENV}: unknown step {step!r}; expected one of {', '.join(STEPS)}")
    return step, int(count or 1)


def crash_point(step: str) -> None:
    """Die here if TRIAGE_CRASH_AT names this step and this is its n-th pass."""
    target = _target()
    if target is None or target[0] != step:
        return
    _hits[step] += 1
    if _hits[step] >= target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
