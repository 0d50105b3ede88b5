"""Crash safety of the real bot process: SIGKILL at every step, SIGTERM mid-cycle.

The bot runs as `python run.py --config ... --once` against all fakes (Gmail, Sheets, Slack, HubSpot, OpenAI).
TRIAGE_CRASH_AT (bot/faults.py) makes it SIGKILL itself at a named step; a few more kills come from outside at
random moments. Mail keeps arriving between runs. After the kills the bot is restarted until it has nothing
left to do, and the fakes' state must equal that of a crash-free run over the same mail.

RESILIENCE_KILLS=<n> raises the number of kills for a longer soak (default 50, about a minute on 2 cores).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.faults import STEPS
from tests.resilience.checks import assert_invariants, assert_same_outcome, drain
from tests.resilience.harness import Mail, Stack, demo_mail, inbox40, variants

KILLS = int(os.environ.get("RESILIENCE_KILLS", "50"))
RANDOM_KILLS = KILLS // 5  # from outside, at a random moment of a run
PER_STEP = -(-(KILLS - RANDOM_KILLS) // len(STEPS))
PER_CYCLE = 4  # messages per cycle: several cycles, so every step is passed many times
CAMPAIGNS = 2  # independent bot + fakes pairs run side by side (one per core)
DISPOSABLE = {"spam", "newsletter"}


def external_kill(stack: Stack, config: Path, rng: random.Random) -> bool:
    """Start a run and SIGKILL it a random moment after it first talks to Gmail; False if it finished first."""
    before = len(stack.gmail.calls)
    proc = subprocess.Popen(stack.command(config, "--once"), env=stack.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(stack.gmail.calls) == before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.6))
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    code = proc.wait(timeout=60)
    assert code in (0, -signal.SIGKILL), code
    return code == -signal.SIGKILL


def kill_plan(campaign: int) -> list[str]:
    """This campaign's share of the kills: the steps split evenly between campaigns, plus random ones."""
    plan = [step for i, step in enumerate(STEPS)
            for _ in range(PER_STEP // CAMPAIGNS + (1 if (i + campaign) % CAMPAIGNS < PER_STEP % CAMPAIGNS else 0))]
    share = RANDOM_KILLS // CAMPAIGNS + (1 if campaign < RANDOM_KILLS % CAMPAIGNS else 0)
    return plan + ["random"] * share


def crash_campaign(tmp: Path, model: Path, campaign: int) -> Counter[str]:
    """Kill the bot per plan while mail keeps arriving, drain, and compare with a crash-free run."""
    rng = random.Random(20261121 + campaign)
    plan = kill_plan(campaign)
    rng.shuffle(plan)
    kills: Counter[str] = Counter()
    first = inbox40()
    business = variants([m for m in first if m.category not in DISPOSABLE])
    disposable = variants([m for m in first if m.category in DISPOSABLE])
    with Stack(tmp / "crash", model=model) as stack:
        stack.deliver(first)
        config = stack.write_config(poll__max_messages_per_cycle=PER_CYCLE)
        runs = 0
        while plan:
            runs += 1
            assert runs <= 4 * len(kill_plan(campaign)), f"steps not reached: {plan}"
            if len(stack.unprocessed()) < PER_CYCLE:  # mail keeps arriving while the bot crashes
                stack.deliver([next(business) for _ in range(PER_CYCLE - 1)] + [next(disposable)])
            step = plan.pop(0)
            if step == "random":
                killed = external_kill(stack, config, rng)
            else:
                # trash runs once per cycle (one bulk call); the other steps are passed several times
                nth = 1 if step == "after_trash" else rng.randint(1, 2)
                result = stack.run(config, crash_at=f"{step}:{nth}")
                assert result.returncode in (0, -signal.SIGKILL), result.stderr.decode()[-3000:]
                killed = result.returncode == -signal.SIGKILL
            if killed:
                kills[step] += 1
            else:
                plan.append(step)  # not reached in this run (no lead in it, nothing to trash...): later
        drain(stack, config)
        crashed = stack.outcome()
        assert_invariants(stack, crashed)
        assert stack.openai.calls > 0 and stack.oracle.unknown == 0  # the LLM step ran throughout
        delivered = list(stack.delivered)

    with Stack(tmp / "reference", model=model) as ref:
        ref.deliver(delivered)  # all at once: processed oldest first, the order the crash run saw them arrive
        drain(ref, ref.write_config())
        reference = ref.outcome()
        assert_invariants(ref, reference)
    assert_same_outcome(crashed, reference)
    assert crashed.slack_order == reference.slack_order
    return kills


def test_sigkill_at_every_step_loses_nothing_and_repeats_nothing(tmp_path: Path, trained_model: Path) -> None:
    with ThreadPoolExecutor(CAMPAIGNS) as pool:
        done = [pool.submit(crash_campaign, tmp_path / f"campaign{i}", trained_model, i) for i in range(CAMPAIGNS)]
        kills = sum((f.result() for f in done), Counter[str]())
    assert sum(kills.values()) >= KILLS and all(kills[s] >= PER_STEP for s in STEPS), kills
    assert kills["random"] == RANDOM_KILLS


def test_a_crash_after_the_draft_of_a_long_message_id_leaves_one_threaded_draft(tmp_path: Path,
                                                                                  trained_model: Path) -> None:
    """Outlook and Exchange write Message-IDs longer than a header line; the draft must still carry them."""
    (mail,) = [m for m in demo_mail() if m.name == "03-lead-en-distributor-seals"]
    assert len(mail.message_id) > 78
    with Stack(tmp_path, model=trained_model) as stack:
        (original,) = stack.deliver([mail])
        config = stack.write_config()
        assert stack.run(config, crash_at="after_draft:1").returncode == -signal.SIGKILL
        drain(stack, config)
        o = stack.outcome()
        assert o.drafts == Counter({mail.message_id: 1})
        (draft,) = [m for m in stack.gmail.messages.values() if "DRAFT" in m.labels]
        assert draft.thread_id == stack.gmail.messages[original].thread_id
        assert draft.header("In-Reply-To") == mail.message_id
        assert_invariants(stack, o)


def test_sigterm_mid_cycle_finishes_the_message_exits_0_and_the_next_start_continues(
        tmp_path: Path, trained_model: Path) -> None:
    mails: list[Mail] = inbox40()
    with Stack(tmp_path, model=trained_model) as stack:
        stack.deliver(mails)
        stack.gmail.latency = 0.05  # a cycle over 40 messages takes a few seconds: time to stop it mid-way
        config = stack.write_config(poll__interval_seconds=3600)
        daemon = stack.popen(config)
        deadline = time.monotonic() + 60
        while not stack.gmail.drafts and daemon.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, err.decode()[-3000:]
        assert "stopping after the current message" in err.decode()
        # stopped part-way: some mail decided, none left half done
        decided = stack.ledger("SELECT COUNT(*) FROM messages")[0][0]
        assert 0 < decided < len(mails), decided
        assert stack.ledger("SELECT COUNT(*) FROM messages WHERE status != 'done'")[0][0] == 0
        assert stack.ledger("SELECT COUNT(*) FROM effects WHERE status = 'pending' AND kind != 'trash'")[0][0] == 0
        assert len(stack.unprocessed()) == len(mails) - decided

        stack.gmail.latency = 0.0
        drain(stack, config)
        assert_invariants(stack, stack.outcome())
