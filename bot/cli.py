"""Command line: the daemon, one cycle, dry runs, config check, classify files, audit search."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.config import Config, ConfigError, load_config
from bot.ports import AuthError
from bot.state import Ledger, StateError, iso, now_utc

log = logging.getLogger("bot")


def setup_logging(level: str, secrets: Sequence[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "googleapiclient", "urllib3", "httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class SecretFilter(logging.Filter):
    """Masks configured secrets in every log record, whatever code path formatted them."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            if record.exc_info:  # a traceback can quote a secret too: render it here, masked
                msg = f"{msg}\n{logging.Formatter().formatException(record.exc_info)}"
                record.exc_info, record.exc_text = None, None
            for s in self.secrets:
                msg = msg.replace(s, "[secret]")
            record.msg, record.args = msg, None
        return True


def config_secrets(cfg: Config) -> list[str]:
    return [s for s in (cfg.classify.llm.api_key, cfg.notify.slack.token, cfg.crm.hubspot.token) if s]


def parse_since(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration like 7d, 12h or 30m, got {text!r}")
    n, unit = int(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


# ---------------------------------------------------------------- commands


def cmd_run(cfg: Config, once: bool, dry_run: bool) -> int:
    from bot.bootstrap import alert_team, build_services
    from bot.learn import ModelReloader, reloading
    from bot.pipeline import Pipeline
    from bot.recovery import clean_orphans, recover_lost_ledger
    from bot.scheduler import EXIT_AUTH, run_daemon, summary

    stop = threading.Event()
    reloader = ModelReloader(cfg.classify.model_path)  # before the model is read: no change slips in between
    services = build_services(cfg)
    if not dry_run:
        clean_orphans(cfg)
    lost = recover_lost_ledger(cfg, services.ledger, services.mail, services.clock, rebuild=not dry_run)
    if lost:
        alert_team(cfg, lost)
    pipeline = Pipeline(services, dry_run=dry_run, stop=stop)
    if once or dry_run:
        report = pipeline.run_cycle()
        for line in report.dry_run_lines:
            print(line)
        log.info("%scycle done: %s", "dry-run " if dry_run else "", summary(report))
        return 0
    code = run_daemon(reloading(cfg, services, pipeline.run_cycle, reloader), cfg.poll.interval_seconds, stop)
    if code == EXIT_AUTH:
        alert_team(cfg, "Gmail authorization was lost; the bot stopped. Run `python run.py auth gmail` again.")
    return code


def iter_eml(paths: Sequence[str]) -> Iterator[tuple[str, bytes | Exception]]:
    """(name, raw bytes or the read error) for files, folders of .eml (recursively) and '-' (stdin)."""
    for p in paths:
        if p == "-":
            yield "-", sys.stdin.buffer.read()
            continue
        path = Path(p)
        files = sorted(f for f in path.rglob("*.eml")) if path.is_dir() else [path]
        for f in files:
            try:
                yield str(f), f.read_bytes()
            except OSError as exc:
                yield str(f), exc


def cmd_classify(cfg: Config, paths: Sequence[str]) -> int:
    from bot.pipeline import classify_files

    for line in classify_files(cfg, iter_eml(paths)):
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


def cmd_audit_search(cfg: Config, args: argparse.Namespace) -> int:
    ledger = Ledger(cfg.state_dir / "ledger.sqlite3") if (cfg.state_dir / "ledger.sqlite3").exists() else None
    if ledger is None:
        print("no decisions recorded yet")
        return 0
    from bot.records import audit_row

    since = iso(now_utc() - args.since) if args.since else ""
    rows: list[dict[str, Any]] = []
    for m in ledger.iter_messages(since):
        r = audit_row(ledger, m)
        hay = " ".join([r["from"], r["from_name"], r["company"], r["subject"], r["summary"],
                        (m.record.get("email") or {}).get("body", "")]).lower()
        if args.sender and args.sender.lower() not in f"{r['from']} {r['from_name']}".lower():
            continue
        if args.category and r["category"] != args.category:
            continue
        if args.assignee and args.assignee.lower() not in r["assignee"].lower():
            continue
        if args.text and args.text.lower() not in hay:
            continue
        rows.append(r)
    print_table(rows, ["processed_at", "from", "category", "review", "assignee", "subject", "actions"])
    print(f"{len(rows)} decision(s)")
    return 0


def cmd_eval(cfg: Config, args: argparse.Namespace) -> int:
    from bot.evaluate import LIMITS, LabelError, default_mix, evaluate, missed, read_mix, render

    try:
        folder = Path(args.path)
        mix = None if args.mix == "none" else read_mix(Path(args.mix)) if args.mix else default_mix(folder)
        report = evaluate(cfg, folder, args.split, mix)
    except (LabelError, OSError) as exc:
        print(f"eval: {exc}", file=sys.stderr)
        return 2
    failures = missed(report, {option: getattr(args, option) for option in LIMITS})
    print(json.dumps(report.to_dict() | {"missed": failures}, ensure_ascii=False) if args.json else render(report))
    for failure in failures:
        print(f"threshold missed: {failure}", file=sys.stderr)
    return 1 if failures else 0


def cmd_stats(cfg: Config, args: argparse.Namespace) -> int:
    from bot.stats import collect, render

    path = cfg.state_dir / "ledger.sqlite3"
    if not path.exists():
        print("no decisions recorded yet")
        return 0
    stats = collect(Ledger(path), iso(now_utc() - args.since) if args.since else "")
    print(json.dumps(stats, ensure_ascii=False) if args.json else render(stats))
    return 0


def cmd_learn(cfg: Config, args: argparse.Namespace) -> int:
    from bot.bootstrap import build_mail, build_sinks, open_ledger
    from bot.learn import learn, render

    ledger = open_ledger(cfg)
    audit, _, _ = build_sinks(cfg)
    result = learn(cfg, ledger, build_mail(cfg, ledger), audit, force=args.force)
    print(render(result))
    return 0 if result.saved or not result.used else 1


def print_table(rows: list[dict[str, Any]], cols: list[str], width: int = 40) -> None:
    def cell(v: Any) -> str:
        text = " ".join(str(v).split())
        return text if len(text) <= width else text[: width - 1] + "…"

    cells = [[cell(r.get(c, "")) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def build_parser() -> argparse.ArgumentParser:
    from bot.evaluate import LIMITS

    p = argparse.ArgumentParser(prog="run.py", description="Shared-inbox triage bot.")
    p.add_argument("--config", default="config.yaml", help="the YAML config (default: config.yaml)")
    p.add_argument("--once", action="store_true", help="run one cycle and exit")
    p.add_argument("--dry-run", action="store_true", help="decide and log every action, change nothing")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("check", help="validate the config and exit")
    c = sub.add_parser("classify", help="classify .eml files or folders ('-' for stdin), one JSON line each")
    c.add_argument("paths", nargs="+")
    a = sub.add_parser("audit", help="the local audit record")
    asub = a.add_subparsers(dest="audit_command", required=True)
    s = asub.add_parser("search", help="find decisions")
    s.add_argument("--from", dest="sender", help="sender address or name contains")
    s.add_argument("--category")
    s.add_argument("--assignee")
    s.add_argument("--since", type=parse_since, help="e.g. 7d, 12h")
    s.add_argument("--text", help="subject, body, sender or company contains")
    e = sub.add_parser("eval", help="triage quality on a labelled folder of .eml (labels.jsonl or labels.csv)")
    e.add_argument("path")
    e.add_argument("--json", action="store_true", help="one JSON object")
    e.add_argument("--split", choices=["test", "train", "all"],
                   help="labelled split to score (default: test for the bundled gold set, else all)")
    e.add_argument("--mix", metavar="FILE", help="category shares of a real inbox ({\"shares\": {...}}) to weigh the "
                   "LLM figures by (default: mix.json in the folder, if any; 'none' for none)")
    for option, (_, kind) in LIMITS.items():  # --min-accuracy X, --max-destructive N, ...
        e.add_argument("--" + option.replace("_", "-"), type=float, metavar="X",
                       help=f"exit 1 when the figure is {'below' if kind == 'min' else 'above'} X")
    st = sub.add_parser("stats", help="what the bot did: categories, classifiers, LLM cost, corrections, backlog")
    st.add_argument("--since", type=parse_since, help="e.g. 7d, 12h (default: everything)")
    st.add_argument("--json", action="store_true", help="one JSON object")
    le = sub.add_parser("learn", help="retrain the offline classifier with the corrections people made")
    le.add_argument("--force", action="store_true", help="save the new model even if it scores worse")
    au = sub.add_parser("auth", help="authorize a service once")
    au.add_argument("service", choices=["gmail"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"config error in {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level, config_secrets(cfg))
    try:
        if args.command == "check":
            print(f"{args.config}: OK ({cfg.mail.provider}, {len(cfg.routing.pools)} pools, "
                  f"LLM {'on' if cfg.classify.llm.enabled else 'off'})")
            return 0
        if args.command == "classify":
            return cmd_classify(cfg, args.paths)
        if args.command == "audit":
            return cmd_audit_search(cfg, args)
        if args.command == "eval":
            return cmd_eval(cfg, args)
        if args.command == "stats":
            return cmd_stats(cfg, args)
        if args.command == "learn":
            return cmd_learn(cfg, args)
        if args.command == "auth":
            from bot.adapters.gmail_auth import run_oauth_flow
            from bot.bootstrap import google_scopes

            run_oauth_flow(cfg.mail.gmail, google_scopes(cfg))
            return 0
        return cmd_run(cfg, args.once, args.dry_run)
    except AuthError as exc:
        from bot.bootstrap import alert_team

        log.error("%s", exc)
        alert_team(cfg, str(exc))
        return 2
    except StateError as exc:
        log.error("%s", exc)
        return 3
