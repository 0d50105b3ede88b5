"""Resilience of the whole bot: crashes, outages, slow services, a full or read-only disk, hostile mail.

    python -m pytest tests/resilience -q        # about 2 minutes on 2 idle cores

Most tests run the real bot process (`python run.py --config ... --once`, or the daemon) against every fake at
once (harness.Stack: Gmail, Sheets, Slack, HubSpot and OpenAI on 127.0.0.1) and judge it by the fakes' own
state, compared with a run that met no fault (checks.py). The crash points are bot/faults.py
(TRIAGE_CRASH_AT="<step>:<n>"). The disk tests mount small tmpfs file systems: they need root with
CAP_SYS_ADMIN and are skipped otherwise.

Longer runs, opt-in:
    RESILIENCE_KILLS=500 python -m pytest tests/resilience/test_crash.py     # more SIGKILLs (default 50)
    RESILIENCE_EXAMPLES=500 python -m pytest tests/resilience/test_hostile.py  # more hypothesis mail (25)
"""
