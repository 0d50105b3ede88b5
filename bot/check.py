"""`python run.py check [--online]`: what the config file cannot show by itself.

Offline: the files and variables each enabled service needs (the Gmail token or the client file to make one,
service-account keys, the Slack/HubSpot/OpenAI secrets). --online: one real, read-only call to each enabled
service (Gmail users.getProfile, a read of the audit sheet, Slack auth.test, HubSpot owners, the LLM's model
list), each reported on its own line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.config import Config


def offline_problems(cfg: Config) -> list[str]:
    """Problems with the files and secrets of the enabled services, each naming the key, file or variable."""
    out: list[str] = []
    g = cfg.mail.gmail
    if cfg.mail.provider == "gmail" and g.auth == "oauth" and not g.token_file.exists():
        if g.client_secrets_file is None:
            out.append(f"mail.gmail: no token at {g.token_file} and no mail.gmail.client_secrets_file to make one "
                       "(set it to the OAuth client JSON, then run `python run.py auth gmail`)")
        elif not g.client_secrets_file.exists():
            out.append(f"mail.gmail.client_secrets_file: {g.client_secrets_file} does not exist")
        else:
            out.append(f"mail.gmail.token_file: no token at {g.token_file}: run `python run.py auth gmail`")
    if cfg.mail.provider == "gmail" and g.auth == "service_account" and g.service_account_file \
            and not g.service_account_file.exists():
        out.append(f"mail.gmail.service_account_file: {g.service_account_file} does not exist")
    sheets = cfg.audit.sheets
    if sheets.enabled and sheets.credentials_file and not sheets.credentials_file.exists():
        out.append(f"audit.sheets.credentials_file: {sheets.credentials_file} does not exist")
    if sheets.enabled and not sheets.credentials_file and cfg.mail.provider != "gmail":
        out.append("audit.sheets.credentials_file: required unless the Gmail token is used (mail.provider: gmail)")
    llm = cfg.classify.llm
    if llm.enabled and not llm.api_key:
        out.append("classify.llm.api_key_env: the LLM is enabled but no key was found: set the environment "
                   "variable it names (local servers accept any value)")
    return out


def online_results(cfg: Config) -> list[tuple[str, bool, str]]:
    """(service, ok, detail) for one read-only call to each enabled service."""
    probes: list[tuple[str, Callable[[], str]]] = [("mail", lambda: _mail(cfg))]
    if cfg.audit.sheets.enabled:
        probes.append(("sheets", lambda: _sheets(cfg)))
    if cfg.notify.slack.enabled:
        probes.append(("slack", lambda: _slack(cfg)))
    if cfg.crm.hubspot.enabled:
        probes.append(("hubspot", lambda: _hubspot(cfg)))
    if cfg.classify.llm.enabled:
        probes.append(("llm", lambda: _llm(cfg)))
    results = []
    for name, probe in probes:
        try:
            results.append((name, True, probe()))
        except Exception as exc:
            results.append((name, False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"))
    return results


def _mail(cfg: Config) -> str:
    if cfg.mail.provider == "maildir":
        path = cfg.mail.maildir.path
        if path.exists():
            return f"maildir {path} is readable"
        return f"maildir {path} does not exist yet; it is made from {cfg.mail.maildir.seed} on the first run" \
            if cfg.mail.maildir.seed else f"maildir {path} does not exist yet; it is made on the first run"
    from bot.bootstrap import build_mail
    from bot.state import Ledger

    provider: Any = build_mail(cfg, Ledger(None))
    return f"Gmail mailbox {provider.profile().get('emailAddress', '?')} answers"


def _sheets(cfg: Config) -> str:
    from bot.adapters.sheets import SheetsAuditSink, sheets_credentials

    corrections = SheetsAuditSink(cfg.audit.sheets, sheets_credentials(cfg)).read_corrections()
    return f"sheet {cfg.audit.sheets.spreadsheet_key}/{cfg.audit.sheets.worksheet} is readable " \
           f"({len(corrections)} correction(s))"


def _slack(cfg: Config) -> str:
    from bot.adapters.slack import default_client

    answer = default_client(cfg.notify.slack).auth_test()
    return f"Slack token works (team {answer.get('team', '?')}, bot user {answer.get('user', '?')})"


def _hubspot(cfg: Config) -> str:
    import requests

    h = cfg.crm.hubspot
    resp = requests.get(f"{h.base_url.rstrip('/')}/crm/v3/owners", params={"limit": 1}, timeout=h.timeout_seconds,
                        headers={"Authorization": f"Bearer {h.token}"})
    if resp.status_code != 200:
        raise RuntimeError(f"HubSpot answered {resp.status_code}")
    return "HubSpot token works (owners readable)"


def _llm(cfg: Config) -> str:
    from bot.adapters.openai_llm import make_client

    models = [m.id for m in make_client(cfg.classify.llm).models.list()]
    found = "listed" if cfg.classify.llm.model in models else "not listed (a local server may not list it)"
    return f"LLM server {cfg.classify.llm.base_url} answers; model {cfg.classify.llm.model} {found}"
