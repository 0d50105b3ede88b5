"""Phishing and fraud signs, read mostly from what a phisher cannot fake or hide: the receiving server's verdict on
the sender, where links really go, who a display name claims to be, attachments, and what the mail asks for.

Each rule has a name, a severity and a sentence quoting its evidence, so an audit row can say why. A message with
any strong sign, or two weak ones, is never drafted or assigned (bot.classify.offline sends it to review unless the
model is sure it is spam); the signs are also features the text model weighs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.classify.extract import domain_of, is_free_mail, registrable_label
from bot.models import Email

STRONG, WEAK = 2, 1
# Rules read from headers: training mail whose headers are placeholders must not teach their weight.
HEADER_RULES = frozenset({"auth_dmarc_fail", "auth_spf_fail", "auth_dkim_fail", "brand_mismatch", "brand_in_subject",
                          "lookalike_own_domain", "display_name_address", "reply_to_free_mail"})
SUSPECT = 2  # score at which nothing is drafted or assigned


@dataclass(frozen=True)
class Sign:
    rule: str
    weight: int
    evidence: str


@dataclass(frozen=True)
class Verdict:
    signs: tuple[Sign, ...] = ()

    @property
    def score(self) -> int:
        return sum(s.weight for s in self.signs)

    @property
    def suspect(self) -> bool:
        return self.score >= SUSPECT

    def reason(self) -> str:
        return "phishing signs: " + "; ".join(s.evidence for s in self.signs[:3])


# Brands phishers borrow, with the registrable labels their own mail comes from.
BRANDS: dict[str, tuple[str, ...]] = {
    "microsoft": ("microsoft", "office", "office365", "outlook", "live", "sharepoint", "onmicrosoft"),
    "office 365": ("microsoft", "office", "office365", "outlook"), "outlook": ("microsoft", "outlook", "live"),
    "onedrive": ("microsoft", "onedrive", "live"), "sharepoint": ("microsoft", "sharepoint"),
    "docusign": ("docusign",), "adobe": ("adobe", "adobesign"), "dropbox": ("dropbox", "dropboxmail"),
    "wetransfer": ("wetransfer",), "google": ("google", "gmail", "youtube"), "apple": ("apple", "icloud"),
    "icloud": ("apple", "icloud"), "paypal": ("paypal",), "amazon": ("amazon", "amazonses"), "netflix": ("netflix",),
    "dhl": ("dhl",), "dpd": ("dpd",), "ups": ("ups",), "fedex": ("fedex",), "gls": ("gls",), "postnl": ("postnl",),
    "correios": ("correios",), "ctt": ("ctt",), "la poste": ("laposte",), "colissimo": ("colissimo", "laposte"),
    "deutsche post": ("deutschepost", "dhl"), "poste italiane": ("poste", "posteitaliane"),
    "royal mail": ("royalmail",), "sparkasse": ("sparkasse",), "volksbank": ("volksbank", "vr"),
    "commerzbank": ("commerzbank",), "deutsche bank": ("db", "deutsche-bank", "deutschebank"), "ing": ("ing",),
    "santander": ("santander",), "bbva": ("bbva",), "caixabank": ("caixabank",), "intesa": ("intesasanpaolo",),
    "unicredit": ("unicredit",), "bnp paribas": ("bnpparibas",), "société générale": ("societegenerale",),
    "rabobank": ("rabobank",), "abn amro": ("abnamro",), "millennium": ("millenniumbcp",),
    "banco do brasil": ("bb",), "itaú": ("itau",), "bradesco": ("bradesco",), "nubank": ("nubank",),
    "receita federal": ("gov", "receita"), "finanzamt": ("elster", "bund"),
    "agencia tributaria": ("agenciatributaria",),
    "autoridade tributária": ("portaldasfinancas", "gov"), "hmrc": ("gov", "hmrc"), "irs": ("irs",),
    "belastingdienst": ("belastingdienst",), "agenzia delle entrate": ("agenziaentrate",), "impots": ("impots",),
    "binance": ("binance",), "coinbase": ("coinbase",), "metamask": ("metamask",), "whatsapp": ("whatsapp",),
    "instagram": ("instagram",), "facebook": ("facebook", "facebookmail", "meta"), "linkedin": ("linkedin",),
    "booking.com": ("booking",), "airbnb": ("airbnb",), "vodafone": ("vodafone",), "telekom": ("telekom",),
}
# Short brand names count only in capitals and not as a title ("ING", not "Ing. Petra Novak").
_SHORT = frozenset(b for b in BRANDS if len(b) <= 4)
_BRAND = re.compile(r"(?<![\w-])(" + "|".join(re.escape(b) for b in sorted(BRANDS, key=len, reverse=True))
                    + r")(?![\w.-])", re.I)
_MAIL_SYSTEM = re.compile(r"^(?:postmaster|mailer-daemon|mail-daemon|microsoftexchange\w*)$", re.I)

SHORTENERS = frozenset({
    "bit.ly", "tinyurl.com", "t.co", "goo.gl", "is.gd", "ow.ly", "cutt.ly", "rebrand.ly", "shorturl.at", "rb.gy",
    "t.ly", "s.id", "buff.ly", "tiny.cc", "bit.do", "lnkd.in", "short.io", "v.gd", "qrco.de", "urlz.fr", "shorte.st"})
RISKY_TLDS = frozenset({
    "top", "xyz", "click", "buzz", "icu", "cyou", "rest", "cfd", "sbs", "monster", "quest", "lol", "zip", "mov",
    "tk", "ml", "ga", "cf", "gq", "work", "country", "kim", "men", "loan", "win", "bid", "review", "date", "faith",
    "racing", "download", "accountant", "science", "party", "stream", "trade", "webcam", "gdn", "cam", "bond",
    "zone", "ru", "su"})
_LOGIN_PATH = re.compile(r"log-?in|sign-?in|verif|confirm|account|secure|update|unlock|webmail|auth|validate|"
                         r"wallet|password|credential|\.php\b|wp-(?:admin|content|includes)", re.I)
_DANGEROUS = re.compile(r"\.(?:exe|scr|pif|com|bat|cmd|js|jse|vbs|vbe|wsf|hta|msi|jar|lnk|iso|img|vhdx?|html?|"
                        r"shtml|xhtml|svg|one|xll|ps1)$", re.I)
_DOUBLE_EXT = re.compile(r"\.(?:pdf|docx?|xlsx?|jpe?g|png|txt)\.\w{2,4}$", re.I)
_ARCHIVE = re.compile(r"\.(?:zip|rar|7z|ace|gz|tgz|cab|arj)$", re.I)
_PASSWORD = re.compile(r"password|passwort|kennwort|mot de passe|contraseña|contrasena|senha|wachtwoord|"
                       r"\bpw\s*:|\bpwd\s*:|\bcode\s*:\s*\d{3,}", re.I)


def _lower(pattern: str) -> re.Pattern[str]:
    """A pattern matched against lower-cased text: without re.IGNORECASE, long alternations run several times faster."""
    if re.search(r"[A-Z]", re.sub(r"\\[A-Za-z]", "", pattern)):
        raise ValueError(f"upper-case letters in a pattern for lower-cased text: {pattern[:60]}")
    return re.compile(pattern)


# What the mail asks for, in the sales languages: credentials, gift cards, fees, new bank details, crypto.
# Matched against the lower-cased subject and body.
_ASKS: dict[str, tuple[int, re.Pattern[str]]] = {
    "asks for credentials": (WEAK, _lower(
        r"verify your (?:account|identity|e-?mail|mailbox)|confirm your (?:account|identity|password|details|e-?mail)"
        r"|(?:re-?)?validate your|your password (?:will )?expire|password expir|mailbox (?:is )?(?:full|over quota)"
        r"|storage (?:is )?full|unusual (?:sign-?in|login|activity)|suspicious (?:sign-?in|login|activity)"
        r"|someone (?:tried|has tried) to (?:log|sign) ?in|new sign-?in|account (?:will be|has been) (?:suspended|"
        r"locked|closed|restricted|deactivated)|kont(?:o|en) (?:wird|wurde) (?:gesperrt|eingeschränkt)"
        r"|bestätigen sie ihr(?:e)? (?:konto|identität|daten|zugangsdaten)|ihr passwort läuft"
        r"|vérifiez votre (?:compte|identité)|confirmez vos (?:informations|identifiants)|votre compte (?:sera|a été)"
        r" (?:suspendu|bloqué|désactivé)|verifique su (?:cuenta|identidad)|su cuenta (?:será|ha sido) (?:suspendida|"
        r"bloqueada)|verifica il tuo (?:account|conto)|il tuo (?:account|conto) (?:sarà|è stato) (?:sospeso|bloccato)"
        r"|verifique a sua (?:conta|identidade)|verifique sua (?:conta|identidade)|a sua conta (?:será|foi) "
        r"(?:suspensa|bloqueada)|sua conta (?:será|foi) (?:suspensa|bloqueada)|atualize seus dados"
        r"|bevestig uw (?:account|identiteit|gegevens)|uw account (?:wordt|is) (?:geblokkeerd|opgeschort)"
        r"|tentou (?:entrar|aceder|acessar)|intentó (?:acceder|iniciar sesión)|versucht,? sich anzumelden"
        r"|a tenté de se connecter|ha tentato di accedere|heeft geprobeerd in te loggen")),
    "asks for gift cards": (STRONG, _lower(
        r"gift ?cards?|itunes cards?|google play cards?|steam cards?|apple cards?|amazon (?:gift|vouchers?)"
        r"|geschenkkarten?|gutscheinkarten?|cartes? cadeaux?|tarjetas? (?:de )?regalo|carte regalo|buoni regalo"
        r"|cartões? (?:de )?presente|cartões? oferta|cadeaukaart(?:en)?|scratch (?:the|off) (?:card|code)")),
    "asks for a fee to release a delivery": (STRONG, _lower(
        r"(?:customs|import|delivery|shipping|release|clearance|redelivery) (?:fee|charge|duty|dut(?:y|ies) fee)s?"
        r"|zollgebühr|einfuhrabgabe|versandgebühr|zustellgebühr|frais de (?:douane|livraison|dédouanement|port)"
        r"|droits de douane|tasas? (?:de )?aduan|gastos de envío pendientes|tass[ae] doganal|dazi doganali"
        r"|spese di (?:spedizione|sdoganamento)|taxa (?:de )?(?:alfândega|importação|desalfandegamento|envio|entrega)"
        r"|taxas? alfandeg|tarifa postal|invoerrechten|douanekosten|verzendkosten openstaand")),
    "asks to pay into new bank details": (STRONG, _lower(
        r"(?:new|changed|updated|different) (?:bank(?:ing)? (?:details|account)|iban|account details)"
        r"|bank (?:details|account) (?:has|have) (?:changed|been updated)|change (?:of|in) (?:our )?bank"
        r"|neue[nr]? (?:bankverbindung|kontoverbindung|iban)|bankverbindung (?:hat sich )?geändert"
        r"|nouvelles? coordonnées bancaires|nouveau rib|changement de (?:rib|coordonnées bancaires)"
        r"|nuev[oa]s? (?:datos bancarios|cuenta bancaria|iban)|cambio de (?:cuenta|datos) bancari"
        r"|nuov[oe] coordinate bancarie|nuovo iban|cambio (?:di )?(?:iban|conto)|novos? dados bancários"
        r"|nov[oa] (?:iban|conta bancária)|alteração (?:de|dos) dados bancários|nieuwe? (?:bankgegevens|iban|"
        r"rekeningnummer)|gewijzigde bankgegevens")),
    "asks to connect a crypto wallet": (STRONG, _lower(
        r"airdrop|claim your (?:tokens?|reward|nft)|connect your wallet|wallet connect|seed phrase|recovery phrase"
        r"|token (?:distribution|claim)")),
    "secret urgent payment": (WEAK, _lower(
        r"are you (?:available|at your desk)|i need you to (?:handle|process|make) a (?:payment|transfer)"
        r"|(?:strictly )?confidential (?:transaction|payment|acquisition)|keep this (?:between us|confidential)"
        r"|discreet|sind sie (?:gerade )?(?:erreichbar|am platz)|êtes-vous disponible|¿estás disponible"
        r"|sei disponibile|está disponível|ben je beschikbaar|urgent (?:wire|transfer|payment)")),
    "promises money": (WEAK, _lower(
        r"you (?:have )?won|lottery|inheritance|compensation fund|unclaimed (?:funds|prize)|beneficiary of"
        r"|sie haben gewonnen|vous avez gagné|ha(?:s)? ganado|hai vinto|você ganhou|u heeft gewonnen"
        r"|tax refund|steuererstattung|remboursement d'impôt|devolución de impuestos|rimborso fiscale"
        r"|restituição (?:do imposto|de irs)|belastingteruggave")),
}


def _host(url: str) -> str:
    url = url.strip()
    if url.lower().startswith("www."):
        url = "http://" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().strip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return host.replace(".", "").isdigit() and host.count(".") == 3


def _registrable(host: str) -> str:
    parts = host.split(".")
    return ".".join(parts[-3:] if len(parts) > 2 and len(parts[-2]) <= 3 and len(parts[-1]) == 2 else parts[-2:])


_URLISH = re.compile(r"^(?:https?://)?(?:www\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?:[/:?#].*)?$", re.I)


def _shown_host(text: str) -> str:
    m = _URLISH.match(text.strip())
    return m.group(1).lower() if m and "." in m.group(1) and not m.group(1).replace(".", "").isdigit() else ""


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, capped at 3 (only small distances matter)."""
    if abs(len(a) - len(b)) > 2:
        return 3
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return min(prev[-1], 3)


_HOMOGLYPHS = str.maketrans({"0": "o", "1": "l", "3": "e", "5": "s", "@": "a", "|": "l"})


def _looks_like(label: str, own: str) -> bool:
    """A domain label that imitates ours: one or two letters off, digits for letters, ours with words added."""
    if not label or not own or label == own or len(own) < 5:
        return False
    squashed, own_squashed = label.replace("-", ""), own.replace("-", "")
    if squashed == own_squashed:
        return True  # acme-pumps vs acmepumps
    if label.translate(_HOMOGLYPHS).replace("rn", "m").replace("vv", "w") == own.replace("rn", "m"):
        return True
    if own_squashed in squashed:
        return True  # acme-pumps-invoices, secure-acmepumps
    return _distance(squashed, own_squashed) <= (1 if len(own_squashed) < 8 else 2)


def _auth(email: Email) -> list[Sign]:
    """What our receiving server (the topmost Authentication-Results) says about the sender."""
    results = email.headers.get("authentication-results") or email.headers.get("arc-authentication-results") or ""
    low = results.lower()
    signs = []
    if re.search(r"\bdmarc=fail\b", low):
        signs.append(Sign("auth_dmarc_fail", STRONG, "the sender's domain failed DMARC at our mail server"))
    elif re.search(r"\bspf=fail\b", low) and not re.search(r"\bdkim=pass\b", low):
        signs.append(Sign("auth_spf_fail", STRONG, "the sending server is not allowed to send for this domain (SPF)"))
    elif re.search(r"\bdkim=fail\b", low) and not re.search(r"\bdkim=pass\b", low):
        signs.append(Sign("auth_dkim_fail", WEAK, "the mail's DKIM signature failed"))
    return signs


def _brand(email: Email) -> list[Sign]:
    """A display name that claims a brand, sent from a domain that is not the brand's.

    A mail system's own notices (postmaster: bounces, read receipts) carry the name of the mail program
    ("Microsoft Outlook") from the customer's own domain; those are not claims.
    """
    domain = domain_of(email.from_addr)
    if not domain or _MAIL_SYSTEM.match(email.from_addr.partition("@")[0]):
        return []
    for m in _BRAND.finditer(email.from_name or ""):
        brand = m.group(1).lower()
        if brand in _SHORT and not m.group(1).isupper():
            continue
        if registrable_label(domain) in BRANDS[brand]:
            return []
        return [Sign("brand_mismatch", STRONG, f"claims to be {m.group(1)} but writes from {domain}")]
    named = _BRAND.search(email.subject or "")
    if named and (named.group(1).lower() not in _SHORT or named.group(1).isupper()) \
            and registrable_label(domain) not in BRANDS[named.group(1).lower()]:
        return [Sign("brand_in_subject", WEAK, f"the subject names {named.group(1)}, the sender is {domain}")]
    return []


def _lookalike(email: Email, own_domains: Sequence[str], own_names: Sequence[str]) -> list[Sign]:
    own_labels = {registrable_label(d) for d in own_domains if d} | {
        re.sub(r"[^a-z0-9]", "", n.lower().split(" gmbh")[0].split(" ltd")[0]) for n in own_names if n}
    own_labels = {x for x in own_labels if len(x) >= 5}
    if not own_labels:
        return []
    own_set = {d.lower() for d in own_domains}
    candidates = [("sender", domain_of(email.from_addr)), ("reply address", domain_of(email.reply_to))]
    candidates += [("link", _host(href)) for _, href in email.links[:20]]
    for what, domain in candidates:
        if not domain or domain in own_set or any(domain.endswith("." + d) for d in own_set):
            continue
        labels = {registrable_label(domain), *domain.split(".")[:-2]}  # ours.evil.example counts as well
        if any(_looks_like(label, own) or label == own for label in labels for own in own_labels):
            return [Sign("lookalike_own_domain", STRONG, f"{what} {domain} imitates our own domain")]
    return []


def _links(email: Email, sender_domain: str) -> list[Sign]:
    signs: list[Sign] = []
    seen: set[str] = set()
    sender_reg = _registrable(sender_domain) if sender_domain else ""
    for text, href in email.links:
        host = _host(href)
        if not host:
            continue
        reg = _registrable(host)
        shown = _shown_host(text)
        if shown and _registrable(shown) != reg and "link_text_mismatch" not in seen:
            seen.add("link_text_mismatch")
            signs.append(Sign("link_text_mismatch", STRONG, f"a link shows {shown[:40]} but goes to {host[:40]}"))
        if _is_ip(host) and "ip_link" not in seen:
            seen.add("ip_link")
            signs.append(Sign("ip_link", STRONG, f"a link goes to the bare address {host[:40]}"))
        if host in SHORTENERS and "shortener" not in seen:
            seen.add("shortener")
            signs.append(Sign("shortener", WEAK, f"a link hides its target behind {host}"))
        if host.rpartition(".")[2] in RISKY_TLDS and "risky_tld" not in seen:
            seen.add("risky_tld")
            signs.append(Sign("risky_tld", WEAK, f"a link goes to {host[:40]}"))
        if reg != sender_reg and _LOGIN_PATH.search(href) and "login_link" not in seen:
            seen.add("login_link")
            signs.append(Sign("login_link", WEAK, f"a link to a login or verification page on {host[:40]}"))
    return signs


def _attachments(email: Email) -> list[Sign]:
    signs = []
    names = [a.filename for a in email.attachments]
    bad = next((n for n in names if _DANGEROUS.search(n) or _DOUBLE_EXT.search(n)), None)
    if bad:
        signs.append(Sign("dangerous_attachment", STRONG, f"attachment {bad[:60]} can run code or open a fake page"))
    archive = next((n for n in names if _ARCHIVE.search(n)), None)
    if archive and _PASSWORD.search(email.body[:3000]):
        signs.append(Sign("locked_archive", STRONG, f"a password-protected archive ({archive[:60]}) hides its content"))
    return signs


def _asks(email: Email, has_links: bool) -> list[Sign]:
    text = f"{email.subject}\n{email.body[:4000]}".lower()
    signs = []
    for name, (weight, pattern) in _ASKS.items():
        m = pattern.search(text)
        if m:
            # Asking to log in only counts with somewhere to log in: a customer who cannot log in writes support.
            w = STRONG if name == "asks for credentials" and has_links else weight
            signs.append(Sign(name.replace(" ", "_"), w, f'{name} ("{m.group(0)[:40]}")'))
    return signs


def _sender(email: Email) -> list[Sign]:
    signs = []
    name = email.from_name.lower()
    shown = re.search(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)", name)
    if shown and shown.group(1) != domain_of(email.from_addr):
        signs.append(Sign("display_name_address", STRONG,
                          f"the display name shows another address ({shown.group(0)[:50]})"))
    sender, reply = domain_of(email.from_addr), domain_of(email.reply_to)
    if reply and sender and reply != sender and is_free_mail(reply) and not is_free_mail(sender):
        signs.append(Sign("reply_to_free_mail", WEAK, f"replies go to a free-mail address at {reply}"))
    return signs


def inspect(email: Email, own_domains: Sequence[str] = (), own_names: Sequence[str] = ()) -> Verdict:
    """Every phishing and fraud sign of one message."""
    sender = domain_of(email.from_addr)
    signs = [*_auth(email), *_brand(email), *_lookalike(email, own_domains, own_names), *_sender(email),
             *_links(email, sender), *_attachments(email), *_asks(email, bool(email.links))]
    return Verdict(tuple(sorted(signs, key=lambda s: -s.weight)))


def feature_names(verdict: Verdict) -> Iterable[str]:
    """The signs as features of the text model."""
    yield from (f"!phish:{s.rule}" for s in verdict.signs)
    if verdict.suspect:
        yield "!phish:suspect"
