"""Command line: the daemon, one cycle, dry runs, and one function per subcommand (COMMANDS)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Config, ConfigError, load_config
from bot.ports import AuthError
from bot.state import Ledger, StateError, iso, now_utc

log = logging.getLogger("bot")


def setup_logging(level: str, secrets: Sequence[str] = (), fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "googleapiclient", "urllib3", "httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: time (UTC), level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


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


def parse_since(text: str) -> datetime:
    """A duration back from now (7d, 12h, 30m) or a date (2026-11-23) or a UTC time (2026-11-23T09:00)."""
    m = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return now_utc() - {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration like 7d, 12h or 30m, or a date like 2026-11-23, "
                                         f"got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def existing_ledger(cfg: Config) -> Ledger | None:
    """The ledger for reading, or None when the bot has not run yet (nothing is created)."""
    path = cfg.state_dir / "ledger.sqlite3"
    return Ledger(path, readonly=True) if path.exists() else None


# ---------------------------------------------------------------- commands


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    """The daemon, or one cycle with --once; --dry-run decides and prints, and creates or changes nothing."""
    from bot.runner import Runner
    from bot.scheduler import EXIT_AUTH, run_daemon

    if args.dry_run:
        return dry_run(cfg)
    runner = Runner(cfg)
    if args.once:
        from bot.monitor import summary

        log.info("cycle done: %s", summary(runner.cycle()))
        return 0
    if cfg.operations.metrics.enabled:
        from bot.metrics import start

        start(cfg.operations.metrics, runner.monitor.health)
    from bot.report.weekly import with_weekly_report

    cycle = with_weekly_report(lambda: (runner.cfg, runner.services.ledger), runner.cycle)
    code = run_daemon(cycle, runner.interval, runner.stop, runner.reload_requested)
    if code == EXIT_AUTH:
        from bot.bootstrap import alert_team

        told = alert_team(runner.cfg, "Gmail authorization was lost; the bot stopped. Run `python run.py auth gmail` "
                                      "again.", runner.services.notifiers)
        if told:
            log.info("%s", told)
    return code


def dry_run(cfg: Config) -> int:
    import tempfile

    from bot.bootstrap import build_dry_run_services
    from bot.monitor import summary
    from bot.pipeline import Pipeline

    with tempfile.TemporaryDirectory(prefix="triage-dry-run-") as scratch:
        report = Pipeline(build_dry_run_services(cfg, Path(scratch)), dry_run=True).run_cycle()
    for line in report.dry_run_lines:
        print(line)
    log.info("dry run: nothing was changed; %s", summary(report))
    return 0


def cmd_check(cfg: Config, args: argparse.Namespace) -> int:
    from bot.check import offline_problems, online_results

    problems = offline_problems(cfg)
    for problem in problems:
        print(f"problem: {problem}")
    failed = 0
    if args.online:
        for service, ok, detail in online_results(cfg):
            print(f"{service}: {'OK' if ok else 'FAILED'}: {detail}")
            failed += not ok
    if problems or failed:
        print(f"{cfg.source}: {len(problems) + failed} problem(s)", file=sys.stderr)
        return 1
    print(f"{cfg.source}: OK ({cfg.mail.provider}, {len(cfg.routing.pools)} pools, "
          f"LLM {'on' if cfg.classify.llm.enabled else 'off'})")
    return 0


def iter_eml(paths: Sequence[str], empty: list[str]) -> Iterator[tuple[str, bytes | Exception]]:
    """(name, raw bytes or the read error) for files, folders of .eml (recursively) and '-' (stdin);
    folders without any .eml are added to `empty`."""
    for p in paths:
        if p == "-":
            yield "-", sys.stdin.buffer.read()
            continue
        path = Path(p)
        files = sorted(f for f in path.rglob("*.eml")) if path.is_dir() else [path]
        if not files:
            empty.append(p)
        for f in files:
            try:
                yield str(f), f.read_bytes()
            except OSError as exc:
                yield str(f), exc


def cmd_classify(cfg: Config, args: argparse.Namespace) -> int:
    """One JSON line per message; exit 1 when any input failed, a note on stderr when there was none."""
    from bot.pipeline import classify_files

    empty: list[str] = []
    seen = errors = 0
    for line in classify_files(cfg, iter_eml(args.paths, empty)):
        seen += 1
        errors += "error" in line
        print(json.dumps(line, ensure_ascii=False), flush=True)
    for folder in empty:
        print(f"classify: no .eml file in {folder}", file=sys.stderr)
    if not seen:
        print("classify: no input", file=sys.stderr)
    if errors:
        print(f"classify: {errors} of {seen} input(s) failed", file=sys.stderr)
    return 1 if errors or not seen else 0


def cmd_audit(cfg: Config, args: argparse.Namespace) -> int:
    return cmd_audit_show(cfg, args) if args.audit_command == "show" else cmd_audit_search(cfg, args)


def cmd_audit_search(cfg: Config, args: argparse.Namespace) -> int:
    from bot.audit_search import Filters, SearchError, search, write

    ledger = existing_ledger(cfg)
    if ledger is None:
        print("no decisions recorded yet")
        return 0
    filters = Filters(args.sender or "", args.category or "", args.assignee or "", args.since, args.text or "",
                      unanswered=args.unanswered or args.older_than is not None, arrived_before=args.older_than)
    try:
        rows = list(search(cfg, ledger, filters))
    except SearchError as exc:
        print(f"audit search: {exc}", file=sys.stderr)
        return 2
    write(rows, args.format, unanswered=filters.unanswered)
    return 0


def cmd_audit_show(cfg: Config, args: argparse.Namespace) -> int:
    """The whole story of one message, or of every message of one customer."""
    from bot.followup.story import find, story

    ledger = existing_ledger(cfg)
    rows = find(ledger, args.key) if ledger is not None else []
    if ledger is None or not rows:
        print(f"nothing recorded for {args.key!r}")
        return 1
    for i, row in enumerate(rows):
        print(("\n" if i else "") + f"{row.message_id or row.provider_id}  ({row.provider_id})")
        print("\n".join(story(cfg, ledger, row)))
    return 0


def cmd_eval(cfg: Config, args: argparse.Namespace) -> int:
    from bot.evaluate import LIMITS, LabelError, default_mix, evaluate, missed, read_mix, render

    try:
        folder = Path(args.path)
        mix = None if args.mix == "none" else read_mix(Path(args.mix)) if args.mix else default_mix(folder)
        report = evaluate(cfg, folder, args.split, mix, progress=True)
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

    ledger = existing_ledger(cfg)
    if ledger is None:
        print("no decisions recorded yet")
        return 0
    stats = collect(ledger, iso(args.since) if args.since else "")
    print(json.dumps(stats, ensure_ascii=False) if args.json else render(stats))
    return 0


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    from bot.status import collect, render

    now = now_utc()
    status = collect(cfg, existing_ledger(cfg) or Ledger(None), now)
    print(json.dumps(status, ensure_ascii=False) if args.json else render(status, now))
    return 0


def cmd_health(cfg: Config, args: argparse.Namespace) -> int:
    """Exit 0 healthy, 1 stale or failing, with one line why (for Docker HEALTHCHECK and monitoring)."""
    from bot.health import check

    ok, line = check(cfg, now_utc())
    print(line)
    return 0 if ok else 1


def cmd_learn(cfg: Config, args: argparse.Namespace) -> int:
    from bot.bootstrap import build_mail, build_sinks, open_ledger
    from bot.learn import learn, render

    ledger = open_ledger(cfg)
    audit, _, _ = build_sinks(cfg)
    result = learn(cfg, ledger, build_mail(cfg, ledger), audit, force=args.force, progress=True)
    print(render(result))
    return 0 if result.saved or not result.used else 1


def cmd_report(cfg: Config, args: argparse.Namespace) -> int:
    """The manager's report of an ISO week or of the time since --since: HTML (and PDF) with charts."""
    from bot.report.build import summary, write_report
    from bot.report.period import since_bounds, week_bounds
    from bot.report.weekly import post_summary

    ledger = existing_ledger(cfg)
    if ledger is None:
        print("no decisions recorded yet")
        return 1
    now = now_utc()
    try:
        if args.week:
            (start, end, title), stem = week_bounds(cfg, args.week), f"report-{args.week}"
        else:
            start, end, title, name = since_bounds(now, parse_since(args.since_text), args.since_text)
            stem = f"report-{now:%Y-%m-%d}-{name}"
    except (ValueError, argparse.ArgumentTypeError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    written = write_report(cfg, ledger, start, end, title, Path(args.out) if args.out else cfg.report.dir, stem)
    print(summary(written))
    print(f"written: {written.html}" + (f" and {written.pdf}" if written.pdf else ""))
    if args.post:
        print(post_summary(cfg, summary(written), written.html))
    return 0


def cmd_auth(cfg: Config, args: argparse.Namespace) -> int:
    from bot.adapters.gmail_auth import run_oauth_flow
    from bot.bootstrap import google_scopes

    run_oauth_flow(cfg.mail.gmail, google_scopes(cfg), console=args.console)
    return 0


COMMANDS = {"check": cmd_check, "classify": cmd_classify, "audit": cmd_audit, "eval": cmd_eval,
            "stats": cmd_stats, "status": cmd_status, "health": cmd_health, "learn": cmd_learn,
            "report": cmd_report, "auth": cmd_auth}


def build_parser() -> argparse.ArgumentParser:
    from bot.evaluate import LIMITS

    # --config works before or after the subcommand: the subcommand's copy leaves the value alone unless given.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help="the YAML config (default: config.yaml)")
    p = argparse.ArgumentParser(prog="run.py", description="Shared-inbox triage bot.")
    p.add_argument("--config", default="config.yaml", help="the YAML config (default: config.yaml)")
    p.add_argument("--once", action="store_true", help="run one cycle and exit")
    p.add_argument("--dry-run", action="store_true", help="decide and print every action; create or change nothing")
    sub = p.add_subparsers(dest="command")
    ck = sub.add_parser("check", parents=[common], help="validate the config and the files and secrets it names")
    ck.add_argument("--online", action="store_true", help="also make one read-only call to each enabled service")
    c = sub.add_parser("classify", parents=[common],
                       help="classify .eml files or folders ('-' for stdin), one JSON line each")
    c.add_argument("paths", nargs="+")
    a = sub.add_parser("audit", parents=[common], help="the local audit record")
    asub = a.add_subparsers(dest="audit_command", required=True)
    s = asub.add_parser("search", parents=[common], help="find decisions")
    s.add_argument("--from", dest="sender", help="sender address or name contains")
    s.add_argument("--category", help="a category (any case) or 'review'")
    s.add_argument("--assignee", help="a salesperson's name or address (part of it is enough)")
    s.add_argument("--since", type=parse_since, help="received since: 7d, 12h, 30m or a date like 2026-11-23")
    s.add_argument("--text", help="subject, body, sender or company contains")
    s.add_argument("--unanswered", action="store_true", help="leads and review mail nobody of ours has answered")
    s.add_argument("--older-than", type=parse_since, metavar="AGE",
                   help="unanswered and arrived before this: 4h, 2d or a date (implies --unanswered)")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="table (100 columns), csv (every audit column) or json (one object per line)")
    sh = asub.add_parser("show", parents=[common],
                         help="the whole story of one message, or of every message of one customer")
    sh.add_argument("key", help="a Message-ID, a provider id or the customer's address")
    e = sub.add_parser("eval", parents=[common],
                       help="triage quality on a labelled folder of .eml (labels.jsonl or labels.csv)")
    e.add_argument("path")
    e.add_argument("--json", action="store_true", help="one JSON object")
    e.add_argument("--split", choices=["test", "train", "all"],
                   help="labelled split to score (default: test for the bundled gold set, else all)")
    e.add_argument("--mix", metavar="FILE", help="category shares of a real inbox ({\"shares\": {...}}) to weigh the "
                   "LLM figures by (default: mix.json in the folder, if any; 'none' for none)")
    for option, (_, kind) in LIMITS.items():  # --min-accuracy X, --max-destructive N, ...
        e.add_argument("--" + option.replace("_", "-"), type=float, metavar="X",
                       help=f"exit 1 when the figure is {'below' if kind == 'min' else 'above'} X")
    st = sub.add_parser("stats", parents=[common],
                        help="what the bot did: categories, classifiers, LLM cost, corrections, backlog")
    st.add_argument("--since", type=parse_since, help="7d, 12h, 30m or a date (default: everything)")
    st.add_argument("--json", action="store_true", help="one JSON object")
    su = sub.add_parser("status", parents=[common],
                        help="last cycle, backlog, queues, LLM spend, who is away, whose turn is next")
    su.add_argument("--json", action="store_true", help="one JSON object")
    sub.add_parser("health", parents=[common], help="exit 0 when healthy, 1 when stale or failing (one line why)")
    le = sub.add_parser("learn", parents=[common],
                        help="retrain the offline classifier with the corrections people made")
    le.add_argument("--force", action="store_true",
                    help="retrain without new corrections, and save even if it scores worse")
    rp = sub.add_parser("report", parents=[common],
                        help="the manager's report of a week or the last days: HTML (and PDF) with charts")
    period = rp.add_mutually_exclusive_group()
    period.add_argument("--week", help="an ISO week, e.g. 2026-W49")
    period.add_argument("--since", dest="since_text", default="7d",
                        help="the last days or hours (7d, the default; 12h) or since a date like 2026-11-23")
    rp.add_argument("--out", help="the folder to write to (default: report.dir)")
    rp.add_argument("--post", action="store_true", help="post a summary to report.slack_channel")
    au = sub.add_parser("auth", parents=[common], help="authorize a service once")
    au.add_argument("service", choices=["gmail"])
    au.add_argument("--console", action="store_true",
                    help="on a host without a browser: open the printed address anywhere and paste back the result")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `run.py audit search | head`: the reader has gone, which is not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"config error in {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level, cfg.secrets(), cfg.log_format)
    try:
        return COMMANDS.get(args.command, cmd_run)(cfg, args)
    except AuthError as exc:
        from bot.bootstrap import alert_team

        told = alert_team(cfg, str(exc))  # built from the config alone: the Gmail token is what was lost
        log.error("%s%s", exc, f" ({told})" if told else "")  # one line, whatever else happened
        return 2
    except StateError as exc:
        log.error("%s", exc)
        return 3
