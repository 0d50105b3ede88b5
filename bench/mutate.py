#!/usr/bin/env python3
"""Mutation testing of the core: does the fast suite fail when the code is wrong?

    python bench/mutate.py [--module NAME ...] [--report-only] [--markdown FILE]

mutmut (in requirements-dev.txt; settings under [tool.mutmut] in pyproject.toml) makes small deliberate bugs in
the core modules (a flipped comparison, a dropped call, a changed key or constant) and runs, for each one, the fast
tests that execute the mutated function (unit, contract, injection, end-to-end; not tests/resilience, not the
classifier's quality gates and learning runs). A mutant that no test notices "survived". The script prints the
score per core module (killed / (all - equivalent)) against the target of 90 %, then every survivor as a diff,
marking those listed in EQUIVALENT with the reason they cannot be told apart from the real code. The exit code is 1
when a module misses the target or mutants were left unchecked.

It runs niced (the machine is shared); mutmut's own output goes to mutants/mutmut-run.log. Results stay in mutants/
(git-ignored): a second run only checks mutants of functions that changed, and --report-only prints the results
again without running anything. The last result, with its date and timing, is kept in docs/mutation.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.90


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


CORE = (
    Module("decide", "bot/decide.py"),
    Module("routing", "bot/routing.py"),
    Module("state (ledger, rotation, outbox)", "bot/state.py"),
    Module("escape", "bot/escape.py"),
    Module("prefilter", "bot/prefilter.py"),
    Module("replies", "bot/replies.py"),
    Module("config validation", "bot/config.py"),
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

# Mutants that behave exactly like the real code, keyed by (the mutated function as mutmut names it, the line as
# mutated): no test can tell them apart, so they are not counted. Each with the reason.
_CSV = "bot.adapters.csv_audit.xǁCsvAuditSinkǁ"
_CODEC = "codec names are case-insensitive"
_NO_EXTRA = "the rows hold only AUDIT_FIELDS keys and the header holds all of them: there is never an extra key"
_IGNORE = 'DictWriter only acts on extrasaction == "raise"; any other accepted spelling ignores'
_NONE_CELL = 'sheet_cell(None) is "", as is sheet_cell("")'
_POSIX_NL = 'StringIO(newline=None) turns "\\n" into os.linesep on write, which is "\\n" where the bot runs'
EQUIVALENT: dict[tuple[str, str], str] = {
    (_CSV + "_header", 'with open(self.path, newline="", encoding="UTF-8-SIG") as fh:  # -sig: the BOM is no part '
                       'of a name'): _CODEC,
    (_CSV + "_header", 'with open(self.path, newline=None, encoding="utf-8-sig") as fh:  # -sig: the BOM is no '
                       'part of a name'): "the header row is field names: no line break inside a field to translate",
    (_CSV + "_header", 'with open(self.path, encoding="utf-8-sig") as fh:  # -sig: the BOM is no part of a name'):
        "the header row is field names: no line break inside a field to translate",
    (_CSV + "_read_all", 'with open(self.path, newline="", encoding="UTF-8-SIG") as fh:'): _CODEC,
    (_CSV + "read", 'with open(self.path, newline="", encoding="UTF-8-SIG") as fh:'): _CODEC,
    (_CSV + "_rewrite", 'data = buf.getvalue().encode("UTF-8-SIG" if self._has_bom() else "utf-8")  # the BOM '
                        'stays as it was'): _CODEC,
    (_CSV + "_rewrite", 'data = buf.getvalue().encode("utf-8-sig" if self._has_bom() else "UTF-8")  # the BOM '
                        'stays as it was'): _CODEC,
    (_CSV + "_rewrite", 'writer = csv.DictWriter(buf, fieldnames=header, extrasaction="IGNORE")'): _IGNORE,
    (_CSV + "_rewrite", "buf = io.StringIO(newline=None)"): _POSIX_NL,
    (_CSV + "write", 'data = buf.getvalue().encode("UTF-8-SIG" if new else "utf-8")'): _CODEC,
    (_CSV + "write", 'data = buf.getvalue().encode("utf-8-sig" if new else "UTF-8")'): _CODEC,
    (_CSV + "write", 'extrasaction="IGNORE")'): _IGNORE,
    (_CSV + "write", ")"): _NO_EXTRA,  # extrasaction dropped: the default "raise" never fires
    (_CSV + "write", "buf = io.StringIO(newline=None)"): _POSIX_NL,
    (_CSV + "write", 'writer.writerows({k: sheet_cell(r.get(k, None)) for k in AUDIT_FIELDS} for r in rows)'):
        _NONE_CELL,
    (_CSV + "write", 'writer.writerows({k: sheet_cell(r.get(k, )) for k in AUDIT_FIELDS} for r in rows)'): _NONE_CELL,
    (_CSV + "write", "writer = csv.DictWriter(buf, fieldnames=AUDIT_FIELDS if new and header is None else header,"):
        "header is None exactly when the file is new (missing or empty), so `or` and `and` agree",
    ("bot.adapters.csv_audit.x_row_key", 'return str(row.get("provider_id") or row.get("message_id") or "XXXX")'):
        "rows without either id share one key whatever its text",
    ("bot.pipeline.xǁPipelineǁ_deliver_each", "break"):
        "pending_outbox() joins the messages table, so the message row is always there and the branch never runs",
}

KILLED = {"killed", "timeout", "caught by type check"}  # a crash by timeout is a failing test too
SURVIVED_CODES = (0, 5, 33)  # mutmut's exit codes for "survived" and "no tests"


def run_mutmut(patterns: list[str], workers: int) -> int:
    """mutmut over the mutants matching `patterns`, niced; its progress display goes to a log file."""
    cmd = ["nice", "-n", "19", sys.executable, "-m", "mutmut", "run", "--max-children", str(workers), *patterns]
    print(f"$ {' '.join(cmd[:8])} ... ({len(patterns)} patterns)", flush=True)
    (ROOT / "mutants").mkdir(exist_ok=True)
    with open(ROOT / "mutants" / "mutmut-run.log", "w", encoding="utf-8") as log:
        return subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


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
    patterns = [p for m in modules for p in m.patterns()]
    forgotten = 0
    for meta in (ROOT / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        for name, code in codes.items():
            if code in SURVIVED_CODES and any(fnmatch.fnmatchcase(name, p) for p in patterns):
                codes[name] = None
                forgotten += 1
        meta.write_text(json.dumps(data))
    return forgotten


def diff_of(name: str) -> str:
    out = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=ROOT, capture_output=True, text=True)
    return out.stdout


def mutated_line(diff: str) -> str:
    """The mutated line of a `mutmut show` diff (the '+' line), stripped: the key of EQUIVALENT."""
    plus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return " / ".join(plus)


def report(modules: tuple[Module, ...], found: dict[str, str]) -> tuple[list[str], bool]:
    """The score table and the survivors' diffs, as Markdown lines; and whether every module met the target."""
    lines = [f"Mutation score of the fast suite, {date.today().isoformat()} (target {TARGET:.0%} per module)", "",
             "| module | mutants | killed | equivalent | survived | not checked | score |",
             "|---|---|---|---|---|---|---|"]
    survivors: list[str] = []
    ok = True
    for m in modules:
        names = sorted(n for n in found if any(fnmatch.fnmatchcase(n, p) for p in m.patterns()))
        unchecked = [n for n in names if found[n] == "not checked"]  # an interrupted run: no verdict yet
        names = [n for n in names if found[n] != "not checked"]
        killed = [n for n in names if found[n] in KILLED]
        alive = [n for n in names if found[n] not in KILLED]
        equivalent: list[str] = []
        survived: list[str] = []
        for n in alive:
            diff = diff_of(n)
            why = EQUIVALENT.get((n.rsplit("__mutmut_", 1)[0], mutated_line(diff)))
            (equivalent if why else survived).append(n)
            label = f"equivalent: {why}" if why else found[n]
            survivors.append(f"### {n} ({label})\n```diff\n{diff.split(chr(10), 1)[1].strip()}\n```")
        counted = len(names) - len(equivalent)
        score = len(killed) / counted if counted else 1.0
        ok &= score >= TARGET and not unchecked
        lines.append(f"| {m.name} | {len(names)} | {len(killed)} | {len(equivalent)} | {len(survived)} | "
                     f"{len(unchecked)} | {score:.1%}{'' if score >= TARGET else ' (below target)'} |")
    return lines + ["", "## Surviving mutants", "", *survivors], ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", help="only these core modules (by name prefix)")
    ap.add_argument("--report-only", action="store_true", help="print the last results without running")
    ap.add_argument("--markdown", type=Path, help="also write the report to this file")
    ap.add_argument("--workers", type=int, default=2, help="test processes at a time (default 2)")
    ap.add_argument("--recheck-survivors", action="store_true",
                    help="judge the last run's surviving mutants again (after adding tests)")
    args = ap.parse_args()
    modules = tuple(m for m in CORE if not args.module or any(m.name.startswith(p) for p in args.module))
    if args.recheck_survivors and not args.report_only and (ROOT / "mutants").is_dir():
        print(f"{recheck_survivors(modules)} surviving mutants will be judged again", flush=True)
    if not args.report_only:
        started = time.monotonic()
        code = run_mutmut([p for m in modules for p in m.patterns()], args.workers)
        print(f"mutmut exited {code} after {(time.monotonic() - started) / 60:.1f} min", flush=True)
        if code != 0:  # e.g. the tests fail without any mutant: then no verdict can be trusted
            print((ROOT / "mutants" / "mutmut-run.log").read_text(encoding="utf-8", errors="replace")[-3000:])
            return 2
    lines, ok = report(modules, results())
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
