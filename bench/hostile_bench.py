#!/usr/bin/env python3
"""Peak memory of the real bot process with the whole hostile set in one Maildir.

    python bench/hostile_bench.py [--bot DIR] [--cycles N] [--skip CASE ...]

The hostile set: the broken and hostile corpus (tests/resilience/corpus.py), the prompt-injection corpus, two
mails sharing a Message-ID, a 25 MB attachment and a 50 MB single-line body. They are seeded into a fresh Maildir
and `run.py --once` runs on them (the offline default with a trained model: no LLM, CSV audit, console pings)
`--cycles` times; each
run's exit code, wall time, peak RSS (the kernel's ru_maxrss for that process, see tests/peak.py) and
cycle summary are printed. `--bot` runs
another checkout of the bot (e.g. an older one) on the same mail.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.bootstrap import GOLD_DIR  # noqa: E402
from bot.classify.offline import base_examples, train  # noqa: E402
from tests.peak import run_measured  # noqa: E402
from tests.resilience.corpus import big_attachment, broken_mail, duplicate_message_id, huge_line  # noqa: E402

INJECTION = ROOT / "tests" / "injection" / "corpus"


def hostile_set() -> list[tuple[str, bytes]]:
    mails = broken_mail() + duplicate_message_id() + [(p.stem, p.read_bytes()) for p in sorted(INJECTION.glob("*.eml"))]
    return [*mails, ("big-attachment", big_attachment(25)), ("huge-line", huge_line(50))]


def run(bot: Path, config: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS in MiB, stderr) of one `run.py --once`, measured from a small process."""
    started = time.perf_counter()
    done = run_measured([sys.executable, str(bot / "run.py"), "--config", str(config), "--once"], cwd=bot)
    return done.returncode, time.perf_counter() - started, done.peak_mib, done.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bot", type=Path, default=ROOT, help="the checkout whose run.py runs (default: this one)")
    ap.add_argument("--cycles", type=int, default=2, help="runs of --once on the same state")
    ap.add_argument("--skip", nargs="*", default=[], metavar="CASE",
                    help="leave these cases out (e.g. date-9999, which stops an older bot's every cycle)")
    args = ap.parse_args()
    mails = [raw for name, raw in hostile_set() if name not in args.skip]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        seed = tmp_path / "seed"
        seed.mkdir()
        for i, raw in enumerate(mails):
            (seed / f"{i:03d}.eml").write_bytes(raw)
        data = yaml.safe_load((args.bot / "config.yaml").read_text(encoding="utf-8"))
        data["state_dir"] = str(tmp_path / "state")
        data["mail"]["maildir"] = {"path": str(tmp_path / "state" / "maildir"), "seed": str(seed)}
        data["audit"]["csv_path"] = str(tmp_path / "state" / "audit.csv")
        data["classify"]["model_path"] = str(tmp_path / "model.json")
        data["replies"]["templates_dir"] = str(args.bot / "bot" / "templates")
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        train(base_examples(GOLD_DIR)).save(tmp_path / "model.json")  # no run pays for training
        print(f"hostile set: {len(mails)} messages, {sum(map(len, mails)) / 2**20:.0f} MiB, bot {args.bot}")
        for cycle in range(1, args.cycles + 1):
            code, seconds, peak, err = run(args.bot, config)
            summary = next((line.split("cycle done: ", 1)[1] for line in err.splitlines() if "cycle done: " in line),
                           "")
            print(f"run {cycle}: exit {code}, {seconds:.1f} s, peak RSS {peak:.0f} MiB; {summary}")
            if code != 0:
                print("  " + err[-600:].strip().replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
