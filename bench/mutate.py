#!/usr/bin/env python3
"""Mutation testing of the core: does the fast suite fail when the code is wrong?

    python bench/mutate.py [--module NAME ...] [--all | --sample 50 --seed 1] [--workers 2] [--recheck-survivors]
                           [--report-only] [--markdown FILE]

mutmut (in requirements-dev.txt; settings under [tool.mutmut] in pyproject.toml) makes small deliberate bugs in
the core modules (a flipped comparison, a dropped argument, a changed key or constant) and judges each with the
fast tests that run the mutated function (unit, contract, injection, end-to-end; not tests/resilience, not the
classifier's quality gates and learning runs). A mutant that no test notices "survived". The core holds about
4,800 mutants, hours of work for two cores: by default the script judges a random sample of 50 mutants per module
(the same sample from run to run, while the code stays the same), which takes under 30 minutes, and gives each
module's score with its 95 % interval; --all judges every mutant. It prints the score per core module (killed /
(checked - equivalent)) against the target of 90 %, then every survivor as a diff, marking those listed in
bench/mutation_equivalents.txt with the reason no input can tell them from the real code. The exit code is 1 when
a module misses the target or mutants were left unchecked, 2 when mutmut itself failed.

It runs niced (the machine is shared); mutmut's own output goes to mutants/mutmut-run.log. Results stay in mutants/
(git-ignored): a second run only checks mutants of functions that changed, and --report-only prints the results
again without running anything. The last result, with its date and timing, is kept in docs/mutation.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.90
SAMPLE = 50  # mutants per module: the whole sample fits in 30 minutes on the 2-core machine


@dataclass(frozen=True)
class Module:
    """A core module as mutation testing sees it: a file, and the functions of it that count (None: all)."""

    name: str
    path: str
    functions: tuple[str, ...] | None = None

    def patterns(self) -> list[str]:
        """mutmut's mutant-name patterns: module.x_func__mutmut_N, module.xǁClassǁmethod__mutmut_N."""
        dotted = self.path.removesuffix(".py").replace("/", ".")
        if self.functions is None:
            return [f"{dotted}.*"]
        return [f"{dotted}.x" + ("ǁ" + f.replace(".", "ǁ") if "." in f else "_" + f) + "__mutmut_*"
                for f in self.functions]

    def owns(self, mutant: str) -> bool:
        return any(fnmatch.fnmatchcase(mutant, p) for p in self.patterns())


CORE = (
    Module("decide", "bot/decide.py"),
    Module("routing", "bot/routing.py"),
    Module("state (ledger, rotation, outbox)", "bot/state.py"),
    Module("escape", "bot/escape.py"),
    Module("prefilter", "bot/prefilter.py"),
    Module("replies", "bot/replies.py"),
    # The checks, not the section parsers' key names and default values: the Reader's type, range, choice, list and
    # unknown-key checks, the cross-checks of dates, members and pools, and the YAML size bounds.
    Module("config validation", "bot/config.py",
           ("show", "ConfigError.__init__", "Reader._p", "Reader.key_text", "Reader.problem", "Reader.raw",
            "Reader.section", "Reader.string", "Reader.boolean", "Reader.number", "Reader.integer", "Reader.str_list",
            "Reader.path_value", "Reader.optional_path", "Reader.secret", "Reader.check_unknown", "_date", "_member",
            "_routing", "_zone", "_clock", "_weekday", "parse_config", "_BoundedLoader.compose_node", "_path_text",
            "_expanded", "_too_large", "read_yaml", "load_config")),
    Module("outbox delivery", "bot/pipeline.py",
           ("Pipeline.deliver", "Pipeline._deliver_rows", "Pipeline._write_rows", "Pipeline._set_aside",
            "Pipeline._deliver_each", "_upsert", "_notify")),
    Module("mail effects (pipeline)", "bot/pipeline.py",
           ("Pipeline.apply", "Pipeline._done", "Pipeline.apply_labels", "Pipeline.trash_due", "take_turn")),
    Module("audit CSV", "bot/adapters/csv_audit.py"),
    Module("Gmail effects", "bot/adapters/gmail.py",
           ("GmailProvider.thread", "GmailProvider._parse_thread", "GmailProvider._label_id",
            "GmailProvider.ensure_labels", "GmailProvider.modify", "GmailProvider.modify_many",
            "GmailProvider._modify_items", "GmailProvider._batch_modify", "GmailProvider._label_change",
            "GmailProvider._labels_gone", "GmailProvider.trash", "GmailProvider.create_draft",
            "GmailProvider._find_draft", "GmailProvider.draft_id", "GmailProvider._draft_of", "_source_of")),
    Module("Maildir effects", "bot/adapters/maildir.py",
           ("MaildirProvider.thread", "MaildirProvider.ensure_labels", "MaildirProvider.modify",
            "MaildirProvider.trash", "MaildirProvider.create_draft", "MaildirProvider.ids_with_label",
            "MaildirProvider._retarget", "MaildirProvider._link", "MaildirProvider.locate", "folder_for_label",
            "label_for_folder")),
)

EQUIVALENTS_FILE = ROOT / "bench" / "mutation_equivalents.txt"


def load_equivalents(path: Path = EQUIVALENTS_FILE) -> dict[tuple[str, str], str]:
    """(mutated function as mutmut names it, mutated line) -> why no input can tell the mutant from the real code."""
    out: dict[tuple[str, str], str] = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields = dict(ln.split(": ", 1) for ln in block.splitlines() if ln and not ln.startswith("#"))
        if fields:
            out[(fields["function"], fields["line"].strip())] = fields["why"]
    return out


EQUIVALENT = load_equivalents()


def equivalent_why(name: str, diff: str) -> str | None:
    """Why this surviving mutant is equivalent, if bench/mutation_equivalents.txt says so: matched by its function
    and one of its mutated lines (or all of them joined by " / ")."""
    function = name.rsplit("__mutmut_", 1)[0]
    plus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    for line in [" / ".join(plus), *plus]:
        if (function, line) in EQUIVALENT:
            return EQUIVALENT[(function, line)]
    return None


KILLED = {"killed", "timeout"}  # a crash by timeout is a failing test too
SURVIVED_CODES = (0, 5, 33)  # mutmut's exit codes for "survived" and "no tests"


def run_mutmut(patterns: list[str], workers: int) -> int:
    """mutmut over the mutants matching `patterns` (names or name patterns), niced; its progress display goes to
    mutants/mutmut-run.log."""
    cmd = ["nice", "-n", "19", sys.executable, "-m", "mutmut", "run", "--max-children", str(workers), *patterns]
    print(f"$ {' '.join(cmd[:8])} ... ({len(patterns)} mutants or patterns)", flush=True)
    (ROOT / "mutants").mkdir(exist_ok=True)
    with open(ROOT / "mutants" / "mutmut-run.log", "a", encoding="utf-8") as log:
        return subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def prepare() -> int:
    """Make the mutants and learn which tests run which function (mutmut's first steps; later runs reuse both as
    long as the code and the tests stay the same): a run over the first mutant of each function of bot/escape.py,
    a few seconds of tests (mutmut wants at least one mutant to run)."""
    return run_mutmut(["bot.escape.x_*__mutmut_1"], 1)


def sample(modules: tuple[Module, ...], found: dict[str, str], size: int, seed: str) -> set[str]:
    """Up to `size` mutants per module, drawn at random: those whose name hashes lowest with the seed. The draw is
    the same from run to run, and a change to one function changes only which of its own mutants are drawn, so a
    before/after comparison judges the same bugs."""
    def rank(name: str) -> bytes:
        return hashlib.sha256(f"{seed}:{name}".encode()).digest()

    chosen: set[str] = set()
    for m in modules:
        names = [n for n in found if m.owns(n)]
        chosen.update(sorted(names, key=rank)[:size])
    return chosen


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % interval of a proportion k/n (Wilson score interval): what a sample's score says of the module."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def results() -> dict[str, str]:
    """mutant name -> status, from mutmut's result files under mutants/."""
    sys.path.insert(0, str(ROOT))
    from mutmut.stats import status_by_exit_code  # the table `mutmut results` prints from

    found: dict[str, str] = {}
    for meta in (ROOT / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            found[name] = status_by_exit_code[code] if code is not None else "not checked"
    return found


def recheck_survivors(modules: tuple[Module, ...]) -> int:
    """Forget the verdict on surviving mutants of these modules, so the next run judges them with the tests as they
    are now (mutmut re-runs a mutant when its function changes, not when a test is added). Returns how many."""
    forgotten = 0
    for meta in (ROOT / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        again = [n for n, code in codes.items() if code in SURVIVED_CODES and any(m.owns(n) for m in modules)]
        for name in again:
            codes[name] = None
        if again:
            meta.write_text(json.dumps(data))
        forgotten += len(again)
    return forgotten


def diff_of(name: str) -> str:
    """The mutant as a diff against the real function (what `mutmut show` prints, without a process per mutant)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    os.chdir(ROOT)
    module = name.split(".x_")[0].split(".xǁ")[0]  # bot.adapters.gmail.xǁGmailProviderǁtrash__mutmut_3
    return get_diff_for_mutant(name, path=Path(*module.split(".")).with_suffix(".py"))


def report(modules: tuple[Module, ...], found: dict[str, str], sampled: bool) -> tuple[list[str], bool]:
    """The score table and the survivors' diffs, as Markdown lines; and whether every module met the target.

    The score is killed / (checked - equivalent). For a sample, the 95 % interval says what it tells of the whole
    module."""
    kind = "a random sample of each module's mutants" if sampled else "every mutant"
    lines = [f"Mutation score of the fast suite, {date.today().isoformat()}, {kind} (target {TARGET:.0%} per "
             "module)", "", "| module | mutants checked | killed | equivalent | survived | not checked | score | "
             "95 % interval |", "|---|---|---|---|---|---|---|---|"]
    survivors: list[str] = []
    ok = True
    for m in modules:
        names = sorted(n for n in found if m.owns(n))
        unchecked = [n for n in names if found[n] == "not checked"]  # an interrupted run: no verdict yet
        names = [n for n in names if found[n] != "not checked"]
        killed = [n for n in names if found[n] in KILLED]
        equivalent: list[str] = []
        survived: list[str] = []
        for n in names:
            if found[n] in KILLED:
                continue
            diff = diff_of(n)
            why = equivalent_why(n, diff)
            (equivalent if why else survived).append(n)
            label = f"equivalent: {why}" if why else found[n]
            survivors.append(f"### {n} ({label})\n```diff\n{diff.strip()}\n```")
        counted = len(names) - len(equivalent)
        score = len(killed) / counted if counted else 1.0
        low, high = wilson(len(killed), counted)
        ok &= score >= TARGET and not unchecked
        mark = "" if score >= TARGET else " (below target)"
        lines.append(f"| {m.name} | {len(names)} | {len(killed)} | {len(equivalent)} | {len(survived)} | "
                     f"{len(unchecked)} | {score:.1%}{mark} | {low:.0%}–{high:.0%} |")
    return lines + ["", "## Surviving mutants", "", *survivors], ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", help="only these core modules (by name prefix)")
    ap.add_argument("--all", action="store_true", help="every mutant of the modules (hours), not a sample")
    ap.add_argument("--sample", type=int, default=SAMPLE, help=f"mutants per module (default {SAMPLE})")
    ap.add_argument("--seed", default="1", help="the sample's seed (default 1)")
    ap.add_argument("--report-only", action="store_true", help="print the last results without running")
    ap.add_argument("--markdown", type=Path, help="also write the report to this file")
    ap.add_argument("--workers", type=int, default=2, help="test processes at a time (default 2)")
    ap.add_argument("--recheck-survivors", action="store_true",
                    help="judge the last run's surviving mutants again (after adding tests)")
    args = ap.parse_args()
    modules = tuple(m for m in CORE if not args.module or any(m.name.startswith(p) for p in args.module))
    if args.recheck_survivors and not args.report_only and (ROOT / "mutants").is_dir():
        print(f"{recheck_survivors(modules)} surviving mutants will be judged again", flush=True)
    started = time.monotonic()
    if not args.report_only:
        if args.all:
            code = run_mutmut([p for m in modules for p in m.patterns()], args.workers)
        else:
            code = prepare()  # also brings the mutants up to date with the code
            found = results()
            todo = sorted(n for n in sample(modules, found, args.sample, args.seed)
                          if found[n] == "not checked") if code == 0 else []
            code = run_mutmut(todo, args.workers) if todo else code
        print(f"mutmut exited {code} after {(time.monotonic() - started) / 60:.1f} min", flush=True)
        if code != 0:  # e.g. the tests fail without any mutant: then no verdict can be trusted
            print((ROOT / "mutants" / "mutmut-run.log").read_text(encoding="utf-8", errors="replace")[-3000:])
            return 2
    found = results()
    if not args.all:
        chosen = sample(modules, found, args.sample, args.seed)
        found = {n: v for n, v in found.items() if n in chosen}
    lines, ok = report(modules, found, sampled=not args.all)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
