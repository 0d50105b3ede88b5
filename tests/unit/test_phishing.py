"""The phishing and fraud rules: each sign on mail that shows it, none on the honest twin of that mail."""

from __future__ import annotations

import pytest

from bot.classify.phishing import SUSPECT, inspect
from bot.mime import parse_email

OURS = ("acme-pumps.example",)
NAMES = ("Acme Pumps GmbH",)


def mail(sender: str = "Anna Clarke <anna@northwind.example>", subject: str = "Quote", body: str = "Hello",
         headers: str = "", html: str = "", attachment: str = "") -> bytes:
    head = (f"From: {sender}\nTo: sales@acme-pumps.example\nSubject: {subject}\nMessage-ID: <x@northwind.example>\n"
            f"Date: Mon, 2 Mar 2026 10:00:00 +0100\n{headers}MIME-Version: 1.0\n")
    if not html and not attachment:
        return (head + f"Content-Type: text/plain; charset=utf-8\n\n{body}\n").encode()
    parts = [f"Content-Type: text/plain; charset=utf-8\n\n{body}\n"]
    if html:
        parts = [f"Content-Type: multipart/alternative; boundary=alt\n\n--alt\n{parts[0]}--alt\n"
                 f"Content-Type: text/html; charset=utf-8\n\n{html}\n--alt--\n"]
    if attachment:
        parts.append(f"Content-Type: application/octet-stream; name=\"{attachment}\"\n"
                     f"Content-Disposition: attachment; filename=\"{attachment}\"\n"
                     "Content-Transfer-Encoding: base64\n\nUEsDBAoAAAAAAA==\n")
    body_parts = "".join(f"--mix\n{p}" for p in parts)
    return (head + f"Content-Type: multipart/mixed; boundary=mix\n\n{body_parts}--mix--\n").encode()


def rules(raw: bytes) -> set[str]:
    return {s.rule for s in inspect(parse_email(raw), OURS, NAMES).signs}


def test_an_ordinary_request_shows_no_sign() -> None:
    verdict = inspect(parse_email(mail(body="Please quote 4 pumps, see https://www.northwind.example/specs")),
                      OURS, NAMES)
    assert verdict.signs == () and not verdict.suspect


@pytest.mark.parametrize(("results", "rule"), [
    ("mx1.acme-pumps.example; dkim=none; spf=pass smtp.mailfrom=x.example; dmarc=fail header.from=bank.example",
     "auth_dmarc_fail"),
    ("mx1.acme-pumps.example; spf=fail smtp.mailfrom=bank.example; dkim=none", "auth_spf_fail"),
])
def test_our_servers_verdict_on_the_sender_counts(results: str, rule: str) -> None:
    assert rule in rules(mail(headers=f"Authentication-Results: {results}\n"))
    passed = "mx1.acme-pumps.example; dkim=pass header.d=northwind.example; spf=pass; dmarc=pass"
    assert not rules(mail(headers=f"Authentication-Results: {passed}\n"))


def test_only_the_topmost_authentication_results_counts() -> None:
    """A sender can add its own header below ours; ours is the first one."""
    headers = ("Authentication-Results: mx1.acme-pumps.example; dmarc=fail header.from=bank.example\n"
               "Authentication-Results: forged.example; dmarc=pass\n")
    assert "auth_dmarc_fail" in rules(mail(headers=headers))


def test_a_brand_in_the_display_name_from_a_foreign_domain() -> None:
    assert "brand_mismatch" in rules(mail(sender="DHL Express <service@dhl-zoll-paket.example>"))
    assert "brand_mismatch" in rules(mail(sender="Microsoft 365 <no-reply@m365-verify.example>"))
    assert not rules(mail(sender="DHL Express <noreply@dhl.example>"))
    assert not rules(mail(sender="Microsoft Outlook <postmaster@customer.example>"))  # a mail system's own notice


def test_a_title_is_not_a_brand() -> None:
    assert not rules(mail(sender="Ing. Petra Novak <novak@strojirny.example>"))
    assert "brand_mismatch" in rules(mail(sender="ING Bank <security@ing-secure-login.example>"))


def test_look_alikes_of_our_own_domain() -> None:
    assert "lookalike_own_domain" in rules(mail(sender="Accounts <billing@acme-pumps-invoices.example>"))
    assert "lookalike_own_domain" in rules(mail(sender="Bob <bob@acme-pumsp.example>"))
    assert "lookalike_own_domain" in rules(mail(body="Log in: https://acmepumps.example.login-portal.example/x"))
    assert not rules(mail(sender="Bob <bob@acme-pumps.example>"))
    assert not rules(mail(sender="Hanna <h@acme-paints.example>"))


def test_a_link_that_shows_one_address_and_goes_to_another() -> None:
    html = '<p>Open <a href="https://evil.example/login">https://www.northwind.example/invoice</a></p>'
    assert "link_text_mismatch" in rules(mail(body="Open the invoice", html=html))
    honest = '<p>Open <a href="https://www.northwind.example/invoice">www.northwind.example/invoice</a></p>'
    assert not rules(mail(body="Open the invoice", html=honest))


def test_links_to_bare_addresses_shorteners_and_login_pages() -> None:
    assert "ip_link" in rules(mail(body="Confirm here http://192.0.2.10/verify"))
    assert "shortener" in rules(mail(body="Details: https://bit.ly/3xYz"))
    assert "login_link" in rules(mail(body="Sign in: https://portal.other.example/account/verify"))
    assert "risky_tld" in rules(mail(body="See https://invoice-view.top/d"))


@pytest.mark.parametrize("name", ["invoice.pdf.exe", "Rechnung.html", "scan.iso", "order.js"])
def test_attachments_that_run_code_or_open_a_fake_page(name: str) -> None:
    assert "dangerous_attachment" in rules(mail(attachment=name))
    assert not rules(mail(attachment="drawing-4711.pdf"))


def test_a_password_protected_archive() -> None:
    assert "locked_archive" in rules(mail(body="The documents are attached. Password: 1234", attachment="docs.zip"))
    assert not rules(mail(body="The documents are attached.", attachment="docs.zip"))


@pytest.mark.parametrize(("text", "rule"), [
    ("Please buy 5 Google Play gift cards and send me the codes, I am in a meeting.", "asks_for_gift_cards"),
    ("Ihre Sendung wartet: bitte zahlen Sie die Zollgebühr von 1,99 EUR.", "asks_for_a_fee_to_release_a_delivery"),
    ("A sua encomenda está retida. Pague a taxa alfandegária de 2,49 EUR.", "asks_for_a_fee_to_release_a_delivery"),
    ("Please note our bank details have changed, pay invoice 881 to the new account.",
     "asks_to_pay_into_new_bank_details"),
    ("Nous vous informons de nos nouvelles coordonnées bancaires.", "asks_to_pay_into_new_bank_details"),
    ("Claim your tokens now: connect your wallet before the airdrop ends.", "asks_to_connect_a_crypto_wallet"),
    ("Someone tried to sign in to your account. Verify your account here https://x.example/v",
     "asks_for_credentials"),
    ("Alguém tentou entrar na sua conta. Verifique a sua conta: https://x.example/v", "asks_for_credentials"),
])
def test_what_the_mail_asks_for(text: str, rule: str) -> None:
    assert rule in rules(mail(body=text))


def test_a_customer_who_cannot_log_in_is_not_asked_for_credentials() -> None:
    """Without a link to log in somewhere, asking about an account is a support question, not a strong sign."""
    verdict = inspect(parse_email(mail(body="Our account will be locked? I cannot log in, please help.")), OURS)
    assert not verdict.suspect


def test_one_strong_sign_or_two_weak_ones_make_a_suspect() -> None:
    weak = inspect(parse_email(mail(body="Details: https://bit.ly/3xYz")), OURS)
    assert weak.score < SUSPECT and not weak.suspect
    two = inspect(parse_email(mail(body="Details: https://bit.ly/3xYz and https://invoice-view.top/d")), OURS)
    assert two.suspect
    strong = inspect(parse_email(mail(sender="PayPal <service@paypal-resolution.example>")), OURS)
    assert strong.suspect
    assert "claims to be PayPal" in strong.reason()


def test_a_pattern_for_lower_cased_text_refuses_upper_case_letters() -> None:
    # The request patterns run without re.IGNORECASE on lower-cased text: an upper-case letter would never match.
    from bot.classify.phishing import _lower

    assert _lower(r"\bgift ?cards?\s").search("buy gift cards now")
    with pytest.raises(ValueError, match="upper-case"):
        _lower(r"Gift cards")
