"""Small faults of the offline default, with the real bot process: a full disk while seeding the Maildir, a kill
right after a console ping, temporary files a kill left behind."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from tests.resilience.harness import Stack, inbox40
from tests.resilience.test_outages import fill, small_disk


def offline_config(stack: Stack, seed: Path, **changes: object) -> Path:
    """The offline default (Maildir seeded from `seed`, CSV audit, console pings, no LLM) and `changes`."""
    offline: dict[str, object] = {
        "mail__provider": "maildir", "audit__sheets__enabled": False, "notify__slack__enabled": False,
        "crm__hubspot__enabled": False, "classify__llm__enabled": False,
        "mail__maildir": {"path": str(stack.state_dir / "maildir"), "seed": str(seed)}}
    return stack.write_config(**{**offline, **changes})


def test_a_full_disk_while_seeding_the_maildir_is_exit_3_with_one_clear_line(tmp_path: Path,
                                                                             trained_model: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    for i in range(40):  # 40 x 64 KB into a disk with about 1 MB left
        (seed / f"{i:02d}.eml").write_bytes(b"From: a@b.example\r\nSubject: quote\r\n\r\n" + b"pumps " * 11_000)
    with small_disk(tmp_path / "state", "16m") as disk, Stack(tmp_path, model=trained_model) as stack:
        config = offline_config(stack, seed)
        filler = fill(disk, 1024 * 1024)
        result = stack.run(config)
        err = result.stderr.decode()
        assert result.returncode == 3, err[-3000:]
        assert "No space left on device" in err and "cannot create the maildir" in err and "Traceback" not in err
        assert not (disk / "maildir").exists() and not (disk / ".maildir.seeding").exists()  # space given back
        filler.unlink()
        assert stack.run(config).returncode == 0  # with room again, the next start seeds and processes
        assert len(list((disk / "maildir").rglob("seed.*"))) >= 40


def test_a_console_ping_is_printed_once_across_a_kill_right_after_it(tmp_path: Path, trained_model: Path) -> None:
    lead = next(m for m in inbox40() if m.name.startswith("x1-lead"))
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "lead.eml").write_bytes(lead.raw)
    with Stack(tmp_path, model=trained_model) as stack:
        config = offline_config(stack, seed, classify__llm__enabled=True)  # the oracle: a sure lead
        stack.oracle.learn([lead])
        killed = stack.run(config, crash_at="after_notify:1")
        assert killed.returncode == -signal.SIGKILL
        again = stack.run(config)
        assert again.returncode == 0
        printed = (killed.stderr + again.stderr).decode()
        assert printed.count("new lead for ") == 1, printed[-3000:]
        assert stack.backlog()["outbox"] == 0


def test_temporary_files_a_kill_left_are_removed_at_start_up(tmp_path: Path, trained_model: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "hello.eml").write_bytes(b"From: a@b.example\r\nSubject: hello\r\n\r\nWe need pumps.\r\n")
    with Stack(tmp_path, model=trained_model) as stack:
        model = stack.state_dir / "model.json"
        config = offline_config(stack, seed, classify__model_path=str(model))
        stack.state_dir.mkdir(mode=0o700)
        shutil.copyfile(trained_model, model)
        assert stack.run(config).returncode == 0
        maildir, hours = stack.state_dir / "maildir", 3600
        orphans = {  # what a kill leaves, and how old it is
            maildir / ".Drafts" / "tmp" / f"{int(time.time())}.M1P4242R0123456789abcdef.host": 0,  # a draft of ours
            maildir / "tmp" / "1700000000.M1P1.mda": 40 * hours,  # a delivery that died long ago
            stack.state_dir / ".model-k3j2h1.tmp": 2 * hours,  # a model `learn` was saving
        }
        alive = {  # what may be in use by another program right now: kept
            maildir / ".Drafts" / "tmp" / "draft-a-mail-client-is-saving": 0,
            maildir / "tmp" / "1700000000.M2P2.mda": 0,
            stack.state_dir / ".model-fresh.tmp": 0,
        }
        now = time.time()
        for path, age in {**orphans, **alive}.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"partial")
            os.utime(path, (now - age, now - age))
        result = stack.run(config)
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        assert [p for p in orphans if p.exists()] == []
        assert all(p.exists() for p in alive)
        assert "removed 3 temporary file(s)" in result.stderr.decode()
