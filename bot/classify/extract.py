"""Who wrote a message and for which company, read from what the message states; None when it does not say."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parseaddr

from bot.models import Email

_FREE_MAIL = frozenset(
    """
gmail.com googlemail.com gmx.de gmx.net gmx.at gmx.ch gmx.com gmx.fr web.de t-online.de freenet.de arcor.de
posteo.de mail.de online.de aol.com aol.de icloud.com me.com mac.com msn.com mail.com protonmail.com proton.me
libero.it virgilio.it alice.it tiscali.it tin.it orange.fr wanadoo.fr free.fr laposte.net sfr.fr neuf.fr
bluewin.ch terra.es telefonica.net sapo.pt zoho.com mail.ru btinternet.com comcast.net ziggo.nl kpnmail.nl
seznam.cz wp.pl o2.pl onet.pl qq.com 163.com fastmail.com hushmail.com tutanota.com
""".split()  # noqa: SIM905 - a word list reads better as text
)
# Providers with a domain per country (yahoo.de, hotmail.co.uk, outlook.fr): known by the name before the suffix.
_FREE_MAIL_FAMILIES = frozenset({
    "yahoo", "ymail", "hotmail", "outlook", "live", "yandex", "gmx", "gmail", "googlemail", "web", "t-online",
    "freenet", "icloud", "aol", "libero", "virgilio", "orange", "wanadoo", "laposte", "sapo", "terra", "telefonica",
    "protonmail", "proton", "mail", "zoho", "seznam", "wp", "onet", "ziggo", "kpnmail", "bluewin", "msn", "me",
    "tiscali", "alice", "free", "sfr", "btinternet", "comcast", "uol", "bol", "ig", "hushmail", "tutanota",
    "fastmail", "posteo", "arcor", "qq", "163"})

_AUTOMATED_LOCAL = re.compile(
    r"no[-_.]?reply|do[-_.]?not[-_.]?reply|^(?:mailer(?:-daemon)?|wordpress|web[-_.]?form|forms?|contact[-_.]?form"
    r"|website|notifications?|bounces?)(?:[-_.+].*)?$")
# Services that send a website's form, chat and booking notifications (known by the name of their domain).
_FORM_SERVICES = frozenset({
    "typeform", "jotform", "wufoo", "formstack", "formspree", "webflow", "hubspot", "hsforms", "hs-forms", "wix",
    "squarespace", "cognitoforms", "tally", "zohoforms", "formsite", "paperform", "wpforms", "gravityforms",
    "123formbuilder", "formkeep", "getform", "basin", "netlify", "intercom", "intercom-mail", "tidio", "zendesk",
    "livechat", "drift", "crisp", "calendly", "hubspotemail", "mailchimpforms", "elementor", "shopify"})

_TWO_LEVEL_SUFFIXES = frozenset({"co.uk", "org.uk", "ac.uk", "com.au", "co.at", "or.at", "com.br", "com.es", "com.pt",
                                 "com.mx", "co.nz", "co.za", "com.tr", "com.cn", "co.jp", "com.ar", "com.pl"})
_DOMAIN_WORDS = {"gmbh": "GmbH", "ag": "AG", "kg": "KG", "sa": "SA", "sas": "SAS", "sarl": "SARL", "srl": "Srl",
                 "spa": "SpA", "sl": "SL", "bv": "BV", "nv": "NV", "ltd": "Ltd", "inc": "Inc", "llc": "LLC"}

# Words that make a display name a role, a department or an organisation rather than a person.
_NOT_A_PERSON = frozenset(
    """
team info sales support service services office newsletter noreply no-reply admin administrator customer customers
kundenservice kundendienst vertrieb einkauf marketing billing accounting buchhaltung hr jobs karriere careers webmaster
shop store contact kontakt gmbh ag ltd inc llc sa sarl srl spa bv plc the via mailer daemon notification
notifications alert alerts website web form formular purchasing procurement department abteilung club news update
updates account accounts order orders payment payments invoice invoices rechnung helpdesk desk reply
kreditorenbuchhaltung rechnungseingang debitorenbuchhaltung finanzbuchhaltung verwaltung technik instandhaltung
wartung werkstatt achats comptabilité comptabilite facturation administration direction technique maintenance
compras contabilidad administración administracion facturación facturacion mantenimiento finanzas almacén
acquisti amministrazione contabilità contabilita fatturazione manutenzione ufficio magazzino
financeiro contabilidade faturamento manutenção manutencao administração administracao
inkoop administratie crediteurenadministratie boekhouding onderhoud afdeling
finance engineering manager engineer production sourcing operations logistics warehouse plant
camping hotel restaurant domaine quinta bodega bodegas cantina weingut brauerei cooperativa board portal
mills foods paper water chemicals chemie industries group gruppe systems solutions technologies pumps werke
stadtwerke gesellschaft university universität université universidad università hospital klinikum
""".split()  # noqa: SIM905 - a word list reads better as text
)
_TITLE = re.compile(r"^(?:(?:dr|prof|dipl\.?-ing|dipl|ing|mag|dott|dott\.ssa|sr|sra|srta|mr|mrs|ms|mme|mlle|m|eng"
                    r"|lic|ir|drs|i\.\s?a|i\.\s?v|pp|p\.\s?p)(?:\.\s*|\s+)(?:\((?:fh|th|tu)\)\s*)?)+", re.I)
_DEGREES = re.compile(r"(?:,?\s+(?:ceng|mimeche|meng|msc|bsc|phd|mba|pe|dipl\.-ing\.|b\.eng|m\.eng|dr\.?))+\s*$", re.I)
_PARTICLES = frozenset({"von", "van", "de", "da", "di", "del", "der", "den", "la", "le", "dos", "das", "du", "zu", "y"})

_CLOSING = re.compile(
    r"^\W*(?:(?:mit\s+)?(?:freundlichen|besten|herzlichen|beste|viele|liebe|sonnige)\s+gr(?:ü|ue)(?:ß|ss)en?"
    r"|gr(?:ü|ue)(?:ß|ss)e|gru(?:ß|ss)|mfg|lg|vg|best(?:\s+regards|\s+wishes)?|kind(?:est)?\s+regards|regards"
    r"|warm\s+regards|many\s+thanks|thanks(?:\s+and\s+regards|\s+in\s+advance)?|thank\s+you|cheers|sincerely"
    r"|yours(?:\s+(?:sincerely|faithfully|truly))?|cordialement|bien\s+cordialement|bien\s+à\s+vous|salutations"
    r"|meilleures\s+salutations|sinc[èe]res\s+salutations|saludos(?:\s+cordiales)?|atentamente|un\s+saludo"
    r"|cordiali\s+saluti|distinti\s+saluti|saluti|cordialmente|atenciosamente|cumprimentos|melhores\s+cumprimentos"
    r"|abraços?|met\s+vriendelijke\s+groet(?:en)?|vriendelijke\s+groet(?:en)?|hartelijke\s+groet(?:en)?|groeten"
    r"|com\s+os\s+melhores\s+cumprimentos|un\s+cordial\s+saludo|merci(?:\s+beaucoup)?|grazie(?:\s+mille)?|gracias"
    r"|muchas\s+gracias|obrigad[oa]|grat[oa]s|danke(?:\s+schön)?|vielen\s+dank|bedankt|ta|thx)\b[\s,.!]*(?P<rest>.*)$",
    re.IGNORECASE)

_LEGAL_FORM = (r"(?:(?:Pvt\.?[ \t]*)?Ltd\.?|GmbH(?:[ \t]*&[ \t]*Co\.?[ \t]*KG)?|gGmbH|AG|KGaA|KG|OHG|UG|e\.[ \t]?K\."
               r"|Limited|LLC|Inc\.?"
               r"|Corp\.?|Corporation|plc|PLC|LLP|S\.A\.S\.?|SAS|SARL|S\.A\.R\.L\.|EURL|S\.A\.|SA|S\.L\.U?\.?|SLU|SL"
               r"|S\.p\.A\.?|SpA|S\.r\.l\.?|Srl|SRL|Lda\.?|Ltda\.?|B\.V\.|BV|N\.V\.|NV|Oy|AB|A/S|ApS|SE)")
_ORGANISATION_WORDS = frozenset(
    """
domaine quinta bodega bodegas cantina weingut brauerei brasserie cooperativa cooperative genossenschaft camping hotel
fontaneria kwekerij autolavaggio caseificio consorzio fromagerie laiterie gartnerei gaertnerei landwirtschaft ferme
granja azienda agricola
""".split()  # noqa: SIM905
)
_SEGMENT_SPLIT = re.compile(r"\n|\s[|·•–—-]\s|[|·•–—]|,\s")
_ANY_LEGAL_FORM = re.compile(r"[ \t]" + _LEGAL_FORM + r"(?![\w])")
_LEGAL_TAIL = re.compile(r"[,\s]+" + _LEGAL_FORM + r"\s*$")
_COMPANY_RE = re.compile(
    r"(?<![\w&])((?:[A-ZÀ-ÖØ-Þ0-9][\w&'.\-]*[ \t]+(?:(?:und|and|&|et|y|e|für|for|de|di)[ \t]+)?){0,4}"
    r"[A-ZÀ-ÖØ-Þ][\w&'\-]*)[ \t]+(" + _LEGAL_FORM + r")(?![\w])")
_LEADING_NOISE = frozenset({"the", "die", "der", "das", "la", "le", "les", "el", "il", "at", "bei", "chez", "from",
                            "von", "de", "firma", "company", "society", "société", "empresa", "azienda", "dear",
                            "sehr", "hallo", "hello", "hi", "bonjour", "hola", "buongiorno", "for", "für", "pour",
                            "para", "per", "with", "mit", "avec", "con", "and", "und", "et", "y", "e", "i", "we",
                            "wir", "nous", "nosotros", "noi", "nós", "our", "unsere", "unser", "notre", "nuestra"})
_FIELD_RE = re.compile(
    r"^[ \t]*(?P<key>company|company name|organi[sz]ation|firma|unternehmen|société|societe|entreprise|empresa"
    r"|azienda|società|name|full name|your name|nom|nombre|nome|e-?mail|email address|courriel|correo|mail)"
    r"[ \t]*:[ \t]*(?P<value>[^\n]{1,100})$", re.IGNORECASE | re.MULTILINE)
_COMPANY_KEYS = frozenset({"company", "company name", "organisation", "organization", "firma", "unternehmen",
                           "société", "societe", "entreprise", "empresa", "azienda", "società"})
_NAME_KEYS = frozenset({"name", "full name", "your name", "nom", "nombre", "nome"})
_ADDRESS_RE = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|wg|tr|rv|enc|i|doorst)\s*:", re.I)
# The header block a mail client writes above a forwarded message: "From: Name <address>" in some language.
_FORWARDED_FROM = re.compile(r"^[ \t>]*(?:from|von|de|da|van|remetente|od)[ \t]*:[ \t]*\"?([^\"<\n]{2,80}?)\"?[ \t]*"
                             r"<([\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+)>", re.I | re.M)

_RFQ_INTENT = re.compile(
    r"\b(?:rfq|request\s+for\s+(?:a\s+)?(?:quotation|quote|proposal)|quotation|quote|price\s+offer|offer|tender"
    r"|anfrage|angebot|preisanfrage|ausschreibung|devis|appel\s+d'offres?|cotizaci[óo]n|presupuesto|oferta"
    r"|preventivo|offerta|richiesta\s+di\s+offerta|or[çc]amento|cota[çc][ãa]o|proposta|offerte)\b")  # lower-cased text
# Kinds of technical requirement. A request is a technical RFQ when it asks for an offer and states requirements
# a specialist must read: a drawing, tolerances or a specification document, and one more kind besides.
_DRAWING = re.compile(
    r"\b(?:drawings?|technical drawing|zeichnung(?:en)?|abwicklung|plans? cot[ée]s?|plano(?:s)?|dibujo|disegno|disegni"
    r"|desenho(?:s)?|tekening(?:en)?|CAD|STEP|DXF|DWG|IGES|P&ID)\b", re.I)
_CAD_FILE = re.compile(r"\.(?:dxf|dwg|step|stp|igs|iges|sldprt|x_t|stl|ipt|prt|catpart)$", re.I)
_SPEC_KINDS: dict[str, re.Pattern[str]] = {
    "tolerances": re.compile(
        r"±\s?\d|\+/-\s?\d|\b(?:tolerances?|toleranz(?:en)?|tol[ée]rances?|tolerancias?|tolleranz[ae]|toler[âa]ncias?"
        r"|toleranties?)\b|\bISO\s?2768|\bISO\s?286|\b[hH][6-9]\b|\bRa\s?\d", re.I),
    "specification": re.compile(
        r"\b(?:specifications?|spec sheet|lastenheft|pflichtenheft|leistungsverzeichnis|cahier des charges|pliego de"
        r" (?:condiciones|prescripciones)|capitolato|caderno de encargos|bestek|requirements? (?:matrix|list|document)"
        r"|datasheets?|data sheets?|datenbl[äa]tter|fiche technique|ficha t[ée]cnica|scheda tecnica)\b", re.I),
    "standard": re.compile(
        r"\b(?:ISO|EN|DIN|ASTM|ASME|ANSI|IEC|API|NACE|UNI|NF|UNE|NEN)\s?(?:EN\s?)?\d{2,5}\b|\bATEX\b"),
    "material": re.compile(
        r"\b1\.4\d{3}\b|\b(?:AISI\s?)?(?:304L?|316L?|316Ti|321|430)\b|\bS[23]\d5(?:JR|J2|MC)?\b|\bEN AW-?\d{4}"
        r"|\b(?:duplex|hastelloy|inconel|titanium|PTFE|EPDM|FKM|viton|PVDF|POM|PEEK|HDPE|galvani[sz]ed|verzinkt"
        r"|pulverbeschichtet|powder[- ]coated|anodi[sz]ed|eloxiert|Grauguss|cast iron|bronze|brass|messing)\b", re.I),
    "dimensions": re.compile(
        r"\d\s?(?:x|×)\s?\d+(?:[.,]\d+)?\s?(?:mm|cm|m)\b|\bØ\s?\d|\b(?:DN|PN)\s?\d{1,4}\b|\bt\s?=\s?\d"
        r"|\bM\d{1,2}\b|\d\s?(?:mm|µm|micron)\b", re.I),
    "process": re.compile(
        r"\d\s*(?:m³|m3)\s*/\s*h\b|\d\s*(?:l|ltr)\s*/\s*(?:min|s|h)\b|\d\s*(?:bar|psi|mbar|kpa|mpa)\b"
        r"|\d\s*(?:kW|kVA|rpm|U/min|Hz|°C|mPa[·.]?s|cP)\b|\bNPSH|\bviscosit|\bviskosit|\bload class|\bkN\b"
        r"|\b(?:head|förderhöhe|fördermenge|hauteur|débit|altura|caudal|prevalenza|portata|opvoerhoogte|debiet"
        r"|vazão|duty point|betriebspunkt|point de fonctionnement|punto de trabajo|punto di lavoro)\b\W{0,3}\d", re.I),
}
_REQUIREMENT_KINDS = ("tolerances", "specification")


@dataclass(frozen=True)
class Fields:
    person_name: str | None
    person_email: str | None
    company: str | None
    company_domain: str | None
    technical_rfq: bool


def domain_of(addr: str) -> str:
    return addr.rpartition("@")[2].lower().strip(".") if "@" in addr else ""


def is_free_mail(domain: str) -> bool:
    """A mail provider for everybody: its domain says nothing about the sender's company."""
    domain = domain.lower()
    return domain in _FREE_MAIL or bool(domain) and registrable_label(domain) in _FREE_MAIL_FAMILIES


def is_automated_sender(addr: str) -> bool:
    """A no-reply or web-form address: the person is in Reply-To or in the form fields, not in From."""
    local, _, domain = addr.lower().partition("@")
    return bool(_AUTOMATED_LOCAL.search(local)) or bool(domain) and registrable_label(domain) in _FORM_SERVICES


def _ours(addr: str, own_domains: Iterable[str]) -> bool:
    domain = domain_of(addr)
    return bool(domain) and any(domain == d.lower() or domain.endswith("." + d.lower()) for d in own_domains)


_FORM_SUBJECT = re.compile(
    r"\b(?:form(?:ular)?|submission|einsendung|formulaire|formulario|modulo|formulário|formulier|inzending"
    r"|web ?form|kontaktformular|contact form)\b|\b(?:new|neue[rs]?|nouve(?:au|lle)|nuev[oa]|nuov[oa]|nov[oa]"
    r"|nieuwe?)\s+(?:\w+\s+){0,3}?(?:enquiry|inquiry|request|lead|message|contact|anfrage|nachricht|demande"
    r"|solicitud|mensaje|consulta|richiesta|messaggio|pedido|contato|contacto|mensagem|aanvraag|bericht|booking"
    r"|reservation|chat|conversation|response|antwort|réponse|respuesta|risposta|resposta|antwoord)\b", re.I)
_MAIL_SYSTEM = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon)@", re.I)
_ANY_FIELD = re.compile(r"^[ \t]*[\w][\w ./()-]{0,30}:[ \t]*\S", re.M)


def is_form_notification(email: Email, own_domains: Iterable[str] = ()) -> bool:
    """A website's form, chat or booking notification: sent by our site or a form service, the person in the
    fields (or Reply-To), not in From."""
    sender = email.from_addr
    if not (is_automated_sender(sender) or _ours(sender, own_domains)) or _MAIL_SYSTEM.match(sender) \
            or "multipart/report" in email.headers.get("content-type", "").lower():
        return False
    fields = len(_ANY_FIELD.findall(email.body[:4000]))
    return fields >= 3 or bool(_FORM_SUBJECT.search(email.subject)) and fields >= 1


def form_contact(email: Email, own_domains: Iterable[str] = ()) -> str | None:
    """The address of the person who filled in a form: Reply-To when it is theirs, else the form's e-mail field."""
    if email.reply_to and not is_automated_sender(email.reply_to) and not _ours(email.reply_to, own_domains):
        return email.reply_to
    for key, value in _form_fields(email.body).items():
        if key in _NAME_KEYS or key in _COMPANY_KEYS:
            continue
        m = _ADDRESS_RE.search(value)
        if m and not _ours(m.group(0), own_domains) and not is_automated_sender(m.group(0)):
            return m.group(0).lower()
    for m in _ADDRESS_RE.finditer(email.body[:3000]):  # "Von: Name <address>" and other free layouts
        if not _ours(m.group(0), own_domains) and not is_automated_sender(m.group(0)):
            return m.group(0).lower()
    return None


def _form_fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for m in _FIELD_RE.finditer(text):
        key = m.group("key").lower()
        found.setdefault(key, m.group("value").strip())
    return found


def _reply_to_person(email: Email) -> str | None:
    """The person named in Reply-To when From names none (web forms, job boards, procurement portals)."""
    if not email.reply_to or person_like(email.from_name) and not is_automated_sender(email.from_addr):
        return None
    return person_like(parseaddr(email.headers.get("reply-to", ""))[0])


def forwarded_sender(email: Email, own_domains: Iterable[str] = ()) -> tuple[str | None, str] | None:
    """Name and address of the author of a forwarded message (a colleague passing on a request), if stated."""
    if not FORWARD_SUBJECT.match(email.subject):
        return None
    own = {d.lower() for d in own_domains}
    for m in _FORWARDED_FROM.finditer(f"{email.body}\n{email.quoted}"):
        addr = m.group(2).lower()
        if addr != email.from_addr and domain_of(addr) not in own:
            return person_like(m.group(1)), addr
    return None


def person_email(email: Email, own_domains: Iterable[str] = ()) -> str | None:
    """The address to answer: From, or Reply-To / the form's e-mail field for forms, portals and no-reply senders.
    An address of ours is never the person's (a website form sends from our own domain)."""
    def usable(addr: str) -> bool:
        return bool(addr) and not is_automated_sender(addr) and not _ours(addr, own_domains)

    if usable(email.reply_to) and _reply_to_person(email):
        return email.reply_to
    if usable(email.from_addr) and not is_form_notification(email, own_domains):
        return email.from_addr
    if usable(email.reply_to):
        return email.reply_to
    return form_contact(email, own_domains)


def person_like(text: str) -> str | None:
    """`text` normalised as "First Last" when it reads as a person's name, else None."""
    name = text.strip().strip("\"'").strip()
    if "," in name:  # "Weber, Jürgen"
        last, _, first = name.partition(",")
        name = f"{first.strip()} {last.strip()}"
    name = _DEGREES.sub("", _TITLE.sub("", name)).strip()
    if name.isupper():
        name = name.title()
    words = [w for w in name.split() if not _TITLE.fullmatch(w + " ")]
    if not 2 <= len(words) <= 4 or any(w.lower().strip(".") in _NOT_A_PERSON for w in words):
        return None
    significant = [w for w in words if w.lower() not in _PARTICLES]
    if len(significant) < 2 or not all(_name_word(w) for w in significant):
        return None
    return " ".join(words)


def _name_word(word: str) -> bool:
    """"Jürgen", "O'Neill", "McKenzie", "Jean-Marc", "Yıldız": capitalised letters, not an acronym."""
    return (word[0].isupper() and any(c.islower() for c in word)
            and all(c.isalpha() or c in "-'\u2019." for c in word) and word[-1] != "-")


def _as_written(name: str, text: str) -> str:
    """"Rigaud Jean-Marc" in From but "Jean-Marc Rigaud" under the mail: the signature knows the order."""
    words = name.split()
    if len(words) == 2:
        swapped = f"{words[1]} {words[0]}"
        if swapped in text and name not in text:
            return swapped
    return name


def _closing_name(text: str) -> str | None:
    lines = [ln.strip() for ln in text.splitlines()]
    for i, line in enumerate(lines):
        m = _CLOSING.match(line)
        if not m:
            continue
        candidates = [m.group("rest")] + [ln for ln in lines[i + 1:i + 4] if ln][:2]
        for cand in candidates:
            name = person_like(cand.strip(" ,.-"))
            if name:
                return name
    return None


def _signature_name(text: str) -> str | None:
    """A name line directly above a role, company or phone line at the end of a message without a closing."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()][-6:]
    for line in lines[:-1]:
        name = person_like(line)
        if name:
            return name
    return None


def person_name(email: Email) -> str | None:
    """The sender's name from the From display name, Reply-To, a form field, or the end of the message."""
    tail = f"{email.body[-600:]}\n{email.signature}"
    if not is_automated_sender(email.from_addr):
        name = person_like(email.from_name)
        if name:
            return _as_written(name, tail)
    name = _reply_to_person(email)
    if name:
        return name
    for key, value in _form_fields(email.body).items():
        if key in _NAME_KEYS:
            name = person_like(value)
            if name:
                return name
    return _closing_name(tail) or _closing_name(email.signature) or _signature_name(tail)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _strip_noise(words: list[str]) -> list[str]:
    while words and words[0].lower() in _LEADING_NOISE:
        words = words[1:]
    return words


def company_in_text(text: str, exclude: Iterable[str] = ()) -> str | None:
    """A company named with its legal form ("Brauerei Müller GmbH") or a form field; not one of `exclude`."""
    excluded = {_key(e) for e in exclude if e}
    for key, value in _form_fields(text).items():
        name = _LEGAL_TAIL.sub("", value).strip(" .,;")
        if key in _COMPANY_KEYS and _key(name) and _key(name) not in excluded:
            return name
    if not _ANY_LEGAL_FORM.search(text):
        return None  # the cheap scan first: most text names no company with its legal form
    for m in _COMPANY_RE.finditer(text):
        words = _strip_noise(m.group(1).split())
        if not words:
            continue
        name = " ".join(words)
        base = _key(name)
        if base and not any(base in e or e in base for e in excluded):
            return name  # without the legal form: "Brauerei Müller", as people and CRMs name companies
    return None


def _fold(word: str) -> str:
    """Lower case, umlauts and accents folded alike: "Gäu", "Gaeu" and "Gau" all become "gau"."""
    ascii_form = unicodedata.normalize("NFKD", word.lower()).encode("ascii", "ignore").decode()
    return ascii_form.replace("ae", "a").replace("oe", "o").replace("ue", "u")


def _covers(labels: list[str], words: list[str]) -> bool:
    """The domain labels appear in order in the words: as word starts ("chem" -> "Chemicals"), run together
    ("lastlight" -> "Last Light"), inside one word ("tuinbouw", "coop" -> "Tuinbouwcooperatie") or as initials
    ("wt" -> "Water Treatment")."""
    joined = "".join(words)
    starts = [0]
    for w in words:
        starts.append(starts[-1] + len(w))
    cursor = 0
    for label in labels:
        for k, p in enumerate(starts[:-1]):
            if p < cursor:
                continue
            if joined.startswith(label, p):
                cursor = p + len(label)
                break
            if len(label) >= 2 and "".join(w[0] for w in words[k:k + len(label)]) == label:
                cursor = starts[min(k + len(label), len(words))]
                break
        else:
            if not (cursor and joined.startswith(label, cursor)):
                return False
            cursor += len(label)
    return True


def company_near_domain(text: str, domain: str, person: str | None = None) -> str | None:
    """The company as written in the signature when it matches the sender's domain: for "minera-atacama.example"
    the line "Compañía Minera Atacama", for "ingenieria-hidrus.example" the line "Hidrus Ingeniería"."""
    labels = [f for f in (_fold(w) for w in re.split(r"[-_]+", registrable_label(domain))) if f]
    if not labels:
        return None
    for segment in _SEGMENT_SPLIT.split(text):
        words = segment.strip(" .,;:()").split()
        if not 1 <= len(words) <= 8 or not words[0][:1].isupper() or any(c in segment for c in "@:/0123456789"):
            continue
        folded = [f for f in map(_fold, words) if f and f not in _PARTICLES]
        if _covers(labels, folded) or (len(labels) > 1 and _covers(labels[::-1], folded)):
            name = _LEGAL_TAIL.sub("", " ".join(words)).strip(" ,")
            if name and _key(name) != _key(person or ""):
                return name
    return None


def _organisation_name(display: str) -> str | None:
    """A free-mail display name that names an organisation ("Domaine des Trois Chenes"), not a person or role."""
    words = display.strip(" \"'").split()
    if 2 <= len(words) <= 6 and not person_like(display) and any(_fold(w) in _ORGANISATION_WORDS for w in words):
        return " ".join(words)
    return None


def registrable_label(domain: str) -> str:
    """"mail.brauerei-mueller.de" -> "brauerei-mueller"."""
    parts = domain.lower().strip(".").split(".")
    if len(parts) >= 3 and ".".join(parts[-2:]) in _TWO_LEVEL_SUFFIXES:
        return parts[-3]
    return parts[-2] if len(parts) >= 2 else parts[0]


def company_from_domain(domain: str) -> str | None:
    """"brauerei-mueller.example" -> "Brauerei Mueller"; None for free-mail providers."""
    if not domain or is_free_mail(domain):
        return None
    words = [w for w in re.split(r"[-_]+", registrable_label(domain)) if w]
    if not words:
        return None
    return " ".join(_DOMAIN_WORDS.get(w, w.capitalize()) for w in words)


def technical_rfq(text: str, attachments: Iterable[str] = ()) -> bool:
    """A request for a quotation that states technical requirements a specialist must read: three kinds of them
    (a drawing, tolerances, a specification, standards, materials, sizes, process data), or two when one is a
    drawing, tolerances or a specification. Naming a product model or a size alone is not enough."""
    if not _RFQ_INTENT.search(text.lower()):  # IGNORECASE would make this scan three times slower
        return False
    kinds = {name for name, p in _SPEC_KINDS.items() if p.search(text)}
    if _DRAWING.search(text) or any(_CAD_FILE.search(a) for a in attachments):
        kinds.add("drawing")
    return len(kinds) >= 3 or len(kinds) == 2 and bool(kinds & {"drawing", *_REQUIREMENT_KINDS})


def extract_fields(email: Email, own_names: Iterable[str] = (), own_domains: Iterable[str] = ()) -> Fields:
    """Person, address and company of the sender, plus whether the message is a technical RFQ."""
    forwarded = forwarded_sender(email, own_domains)
    address = forwarded[1] if forwarded else person_email(email, own_domains)
    name = forwarded[0] if forwarded and forwarded[0] else person_name(email)
    domain = domain_of(address or "")
    own = {d.lower() for d in own_domains}
    if domain in own:
        domain = ""
    exclude = list(own_names) + [company_from_domain(d) or "" for d in own]
    company = company_in_text(f"{email.signature}\n{email.body}", exclude)
    if domain and not is_free_mail(domain):
        near = company_near_domain(f"{email.signature}\n{email.body[-800:]}\n{email.from_name}", domain, name)
        company = near or company or company_from_domain(domain)
    elif not company:
        company = _organisation_name(email.from_name)
    return Fields(
        person_name=name,
        person_email=address,
        company=company,
        company_domain=domain if domain and not is_free_mail(domain) else None,
        technical_rfq=technical_rfq(email.text, (a.filename for a in email.attachments)),
    )
