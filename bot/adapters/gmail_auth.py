"""Gmail credentials: a stored OAuth user token (refreshed and saved back) or a service account with delegation.

Only the gmail.modify scope is requested (list, read, label, draft; no permanent delete, and the bot never
sends); the spreadsheets scope is added only when the audit sheet reuses this token. Tokens never reach the
log. Every endpoint, the token endpoint included, comes from the config.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google.oauth2.credentials
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import service_account
from google_auth_httplib2 import Request as HttplibRequest

from bot.config import GmailConfig
from bot.ports import AuthError

log = logging.getLogger(__name__)

GMAIL_SCOPE = "https://www.googleapis.com/auth/gmail.modify"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"
AUTH_EXPIRED = "Gmail authorization expired or was revoked: run `python run.py auth gmail` again"
# A loopback address no local service listens on: after consent the browser fails to load it, and the user
# copies the address (which carries the one-time code) from the address bar. Used on hosts without a browser.
CONSOLE_REDIRECT = "http://localhost:1/"


def scopes(sheets: bool = False) -> list[str]:
    return [GMAIL_SCOPE, SHEETS_SCOPE] if sheets else [GMAIL_SCOPE]


def save_token(path: Path, text: str) -> None:
    """Write the token file atomically with mode 0600 (a crash leaves the old file or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StoredCredentials(google.oauth2.credentials.Credentials):
    """OAuth user credentials that save themselves to the token file after every refresh."""

    token_path: Path | None = None

    def refresh(self, request: Any) -> None:
        super().refresh(request)
        if self.token_path is not None:
            save_token(self.token_path, self.to_json())


def load_credentials(cfg: GmailConfig, scopes: list[str]) -> Any:
    """Credentials for the configured auth mode; refreshes an expired OAuth token now (and saves it)."""
    if cfg.auth == "service_account":
        return _service_account(cfg, scopes)
    path = cfg.token_file
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        stored = StoredCredentials.from_authorized_user_info(info, scopes=scopes)
        creds = stored.with_token_uri(cfg.token_uri)  # from_authorized_user_info ignores the file's token_uri
        creds.expiry = stored.expiry  # and the copy drops the expiry, which would hide an expired token
    except FileNotFoundError:
        raise AuthError(f"No Gmail token at {path}: run `python run.py auth gmail`") from None
    except (OSError, ValueError, TypeError, AttributeError):
        raise AuthError(f"The Gmail token file {path} is unreadable: run `python run.py auth gmail` again") from None
    granted = info.get("scopes") or []
    missing = [s for s in scopes if granted and s not in granted]
    if missing:
        raise AuthError(f"The Gmail token lacks the scope {missing[0]}: run `python run.py auth gmail` again")
    creds.token_path = path
    if not creds.valid:
        try:
            creds.refresh(HttplibRequest(httplib2.Http(timeout=cfg.timeout_seconds)))
        except RefreshError as exc:
            if not getattr(exc, "retryable", False):
                raise AuthError(AUTH_EXPIRED) from None
            log.warning("Gmail token refresh failed for now (the token endpoint is unavailable); retrying later")
        except TransportError as exc:
            # The network, not the grant: the first Gmail call refreshes again and the cycle retries it.
            log.warning("cannot reach the Gmail token endpoint for now (%s); retrying later", type(exc).__name__)
    return creds


def _service_account(cfg: GmailConfig, scopes: list[str]) -> Any:
    if not cfg.service_account_file:
        raise AuthError("mail.gmail.service_account_file is not set")
    try:
        creds = service_account.Credentials.from_service_account_file(
            str(cfg.service_account_file), scopes=scopes, subject=cfg.subject or None)
    except (OSError, ValueError) as exc:
        raise AuthError(f"Cannot read the service account file {cfg.service_account_file}: "
                        f"{type(exc).__name__}") from None
    return creds.with_token_uri(cfg.token_uri)


def run_oauth_flow(cfg: GmailConfig, scopes: list[str], *, console: bool = False, timeout_seconds: int = 300,
                   out: Callable[[str], None] = print, read: Callable[[str], str] = input) -> Path:
    """Ask a person for consent and store the token (0600) at cfg.token_file; returns that path.

    By default a one-shot local web server receives the redirect (the URL is printed, no browser is opened,
    so it also works through an SSH port forward). With console=True, or when the local server cannot start
    or times out, the person pastes the address the browser was sent to instead.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError

    if not cfg.client_secrets_file:
        raise AuthError("Set mail.gmail.client_secrets_file to the OAuth client JSON (Desktop app) first")
    try:
        flow = InstalledAppFlow.from_client_secrets_file(str(cfg.client_secrets_file), scopes=scopes)
    except (OSError, ValueError) as exc:
        raise AuthError(f"Cannot read the OAuth client file {cfg.client_secrets_file}: {type(exc).__name__}") from None
    flow.client_config["token_uri"] = cfg.token_uri
    consent = {"access_type": "offline", "prompt": "consent"}  # "consent": a refresh token every time
    creds: Any = None
    if not console:
        try:
            creds = flow.run_local_server(
                host="localhost", port=0, open_browser=False, timeout_seconds=timeout_seconds,
                authorization_prompt_message="Open this address in a browser to allow Gmail access:\n{url}\n",
                success_message="Gmail access granted; you may close this window.", **consent)
        except (OSError, WSGITimeoutError) as exc:
            out(f"The local sign-in server did not get an answer ({type(exc).__name__}); pasting works too.")
    if creds is None:
        creds = _console_consent(flow, consent, out, read)
    if not getattr(creds, "refresh_token", None):
        raise AuthError("Google returned no refresh token: remove the app's access in your Google account and retry")
    save_token(cfg.token_file, creds.to_json())
    out(f"Saved the Gmail token to {cfg.token_file}")
    return cfg.token_file


def _console_consent(flow: Any, consent: dict[str, str], out: Callable[[str], None],
                     read: Callable[[str], str]) -> Any:
    flow.redirect_uri = CONSOLE_REDIRECT
    url, _ = flow.authorization_url(**consent)
    out("Open this address in a browser and allow access:\n" + url)
    out(f"The browser then fails to open {CONSOLE_REDIRECT}...; that is expected. Copy that page's address.")
    answer = read("Paste the address (or only the code): ").strip()
    try:
        if answer.startswith("http"):
            # oauthlib insists on https; the loopback redirect is plain http by design.
            flow.fetch_token(authorization_response=answer.replace("http://", "https://", 1))
        else:
            flow.fetch_token(code=answer)
    except Exception as exc:  # oauthlib raises many types; the person only needs to know to try again
        raise AuthError(f"Gmail authorization failed ({type(exc).__name__}): run `python run.py auth gmail` "
                        "again") from None
    return flow.credentials
