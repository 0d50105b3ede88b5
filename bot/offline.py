"""The offline classifier: naive Bayes over the words of the gold set, steered by hand-weighted cues.

A few hundred training messages in six languages cannot teach a model everything, so every message also yields
cue tokens (multilingual phrase lists per category, structural signs of bulk mail). The text model learns
weights for those like for words. Whether a message is spam is then decided by a hand-tuned spam score plus a
bounded vote of the text model: kinds of spam the gold set never showed are still recognised, and the text
model alone can never send a message to the trash. A guard keeps mail that talks business out of the trash.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import extract
from bot.language import detect_language, function_word_share
from bot.models import CATEGORIES, DISPOSABLE, Classification, Email, PrefilterResult

log = logging.getLogger(__name__)

MODEL_VERSION = 1
_BUCKETS = 1 << 20  # hashed features: the model file holds no readable words from the mail it learnt from
_EPOCHS = 10
_LEARNING_RATE = 1.0
_BIAS_RATE = 0.1  # the category frequencies of the gold set are not those of the inbox: learn them slowly
_MIN_GRADIENT = 0.02
_CUE_VALUE = 0.3  # cue tokens count the same in short and long mail; words are normalised by length
_CUE_RATE = 1.0
_LEAD_BIAS = 0.4  # a missed lead costs more than a lead sent to review
_SPAM_OFFSET = 1.6  # spam score at which the cues alone make spam and not-spam equally likely
_MODEL_SPAM_REF = 0.15  # the text model's spam probability for mail it has no opinion about
_MODEL_SPAM_VOTE = (0.0, 3.5)  # bounds of its spam log-odds against that: it may help or doubt, never decide alone
_MODEL_SPAM_WEIGHT = 0.8
_BUSINESS = ("lead", "support", "accounting", "vendor", "job_applicant")
_SAFE_CAP = 0.6  # spam/newsletter confidence when the text also talks business: review, never trash
_CACHE_LIMIT = 200_000
_BIGRAMS = True

_TOKEN_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_URL_RE = re.compile(r"https?://|www\.")
_MONEY_RE = re.compile(r"\$\s?\d{1,3}(?:,\d{3})+|\$\$")
_IP_LINK_RE = re.compile(r"https?://(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[^\s/@]*@)")


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; "e-mail" -> ["e", "mail"], "d'offres" stays one token."""
    return _TOKEN_RE.findall(text.lower().replace("\u2019", "'"))


def _follows(toks: Sequence[str], start: int, rest: Sequence[str]) -> bool:
    if start + len(rest) > len(toks):
        return False
    for word, tok in zip(rest, toks[start:start + len(rest)], strict=True):
        if not (tok == word or (word == "#" and tok.isdigit()) or (word[-1] == "*" and tok.startswith(word[:-1]))):
            return False
    return True


class CueIndex:
    """Phrase lists ("click here|interess*|lose # lbs") matched over a token list in one pass.

    A word ending in "*" matches by prefix (at least four letters before it), "#" matches any number.
    """

    def __init__(self, groups: dict[str, str]) -> None:
        self._first: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
        self._stems: dict[str, list[tuple[str, tuple[str, ...], str, str]]] = {}
        for name, spec in groups.items():
            for phrase in spec.split("|"):
                head, *rest = phrase.split()
                if head.endswith("*"):
                    if len(head) < 5:
                        raise ValueError(f"stem too short: {head}")
                    self._stems.setdefault(head[:4], []).append((head[:-1], tuple(rest), name, phrase))
                else:
                    self._first.setdefault(head, []).append((tuple(rest), name, phrase))

    def find(self, toks: Sequence[str]) -> list[tuple[str, str]]:
        """(group, phrase) of every match, in text order."""
        found: list[tuple[str, str]] = []
        first, stems = self._first, self._stems
        for i, tok in enumerate(toks):
            for entries in (first.get(tok), first.get("#") if tok.isdigit() else None):
                if entries:
                    found += [(name, phrase) for rest, name, phrase in entries
                              if not rest or _follows(toks, i + 1, rest)]
            candidates = stems.get(tok[:4])
            if candidates:
                found += [(name, phrase) for stem, rest, name, phrase in candidates
                          if tok.startswith(stem) and (not rest or _follows(toks, i + 1, rest))]
        return found


# Cue phrases per category in the sales languages (plus Dutch), written by hand. They carry across languages and
# phrasings where a few hundred training messages cannot. A phrase may sit in several groups: the model learns
# what each group is worth.
_LEXICON: dict[str, str] = {
    "lead": "quot*|rfq|request for proposal|please quote|send us a quotation|send us a quote|send me a quote"
    "|could you quote|can you quote|your best price|price for|prices for|pricing|budget price|budget prices"
    "|we need|we are looking for|we're looking for|we require|we would like to order|we want to buy|looking to buy"
    "|our plant|our project|for our|lead time|delivery time|how much|availability|in stock|qty|quantity|units|pcs"
    "|tender|purchase|dealer|distributor|interested in|enquir*|inquir*"
    "|anfrage|angebot*|preisanfrage|bitte um|bitten um|benötigen|wir suchen|suchen wir|für unser|für unsere"
    "|unser werk|unsere anlage|preis für|preise für|was kostet|lieferzeit|liefertermin|verfügbarkeit|stück|stk"
    "|ausschreibung|händler|interess*"
    "|devis|demande de prix|votre meilleur prix|nous cherchons|nous recherchons|nous avons besoin|pour notre"
    "|notre usine|notre installation|délai de livraison|prix pour|combien|disponibilité|unités|appel d'offres"
    "|revendeur|intéress*"
    "|cotizaci*|presupuesto|solicitamos|solicito|necesitamos|buscamos|precio de|precio para|para nuestra"
    "|para nuestro|nuestra planta|plazo de entrega|cuánto|disponibilidad|unidades|licitaci*|distribuidor|interesad*"
    "|preventiv*|richiesta di offerta|richiesta d'offerta|vorremmo ricevere|abbiamo bisogno|cerchiamo"
    "|per il nostro|per la nostra|nostro impianto|nostro stabilimento|tempi di consegna|prezzo per|quanto costa"
    "|pezzi|offerta|rivenditore"
    "|orçamento|orcamento|cotação|precisamos|procuramos|gostaríamos de receber|para a nossa|para o nosso"
    "|nossa fábrica|prazo de entrega|preço para|quanto custa|disponibilidade|encomenda"
    "|offerte|offerteaanvraag|prijsopgave|wij zoeken|we zoeken|levertijd",
    "support": "our pump|the pump|your pump|we bought|we purchased|supplied by you|you supplied|installed|since"
    "|stopped|not working|doesn't work|does not work|leak*|noise|noisy|vibrat*|seal|seals|error|alarm|fault*"
    "|failure|failed|fails|broken|defect*|warranty|repair*|service visit|technician|manual|instructions"
    "|declaration of conformity|spare part for|replacement for our|serial number|serial no|customer number"
    "|maintenance contract|problem|issue|overheat*|tripping"
    "|unsere pumpe|die pumpe|ihre pumpe|bei ihnen gekauft|von ihnen geliefert|eingebaut|installiert|seit"
    "|funktioniert nicht|läuft nicht|undicht|leckage|tropft|geräusch*|vibration|dichtung|gleitringdichtung|fehler*"
    "|störung|defekt|kaputt|garantie|gewährleistung|reklamation|reparatur|techniker|servicetechniker"
    "|bedienungsanleitung|betriebsanleitung|konformitätserklärung|ersatzteil für|seriennummer|kundennummer"
    "|wartungsvertrag|problem"
    "|notre pompe|la pompe|votre pompe|nous avons acheté|installée|installé|depuis|ne fonctionne pas"
    "|ne marche pas|fuite|bruit|garniture|joint|erreur|alarme|défaut|panne|réparation|technicien|notice|manuel"
    "|déclaration de conformité|numéro de série|numéro client|contrat de maintenance|problème"
    "|nuestra bomba|la bomba|su bomba|compramos|instalada|instalado|desde|no funciona|fuga|pierde|ruido"
    "|sello|cierre mecánico|alarma|avería|fallo|garantía|reparación|técnico|declaración de conformidad"
    "|repuesto para|número de serie|número de cliente|contrato de mantenimiento|problema"
    "|la nostra pompa|la pompa|vostra pompa|abbiamo acquistato|installata|installato|da ieri|non funziona"
    "|perdita|perde|rumore|tenuta|guarnizione|errore|allarme|guasto|garanzia|riparazione|tecnico|manuale"
    "|dichiarazione di conformità|ricambio per|numero di serie|codice cliente|contratto di manutenzione"
    "|nossa bomba|a bomba|vossa bomba|compramos|não funciona|vazamento|ruído|vedação|erro|alarme|avaria"
    "|defeito|garantia|reparação|reparo|declaração de conformidade|peça de reposição|número de série"
    "|contrato de manutenção|onze pomp|de pomp|lekt|storing|garantie|reparatie",
    "accounting": "invoice|invoices|invoice no|invoice number|payment|payments|paid|unpaid|remittance"
    "|credit note|statement of account|statement|overdue|reminder|iban|bic|vat|vat number|accounts payable"
    "|accounts receivable|dunning|bank details|due date|payment terms|purchase order|po number|supplier registration"
    "|vendor form|rechnung*|zahlung*|gutschrift|mahnung|überweisung|kontoauszug|ust id|ust idnr|buchhaltung"
    "|offene posten|zahlungsziel|fällig|bankverbindung|lieferantenanlage|factur*|paiement|avoir|relance|tva"
    "|virement|comptabilité|échéance|relevé de compte|coordonnées bancaires|pago|abono|iva|transferencia"
    "|contabilidad|vencimiento|extracto|datos bancarios|nif|fattur*|pagamento|nota di credito|sollecito"
    "|bonifico|contabilità|scadenza|estratto conto|coordinate bancarie|partita iva|fatura|faturas"
    "|nota de crédito|contabilidade|vencimento|extrato|dados bancários|factuur|betaling|herinnering",
    "vendor": "we help|we specialise|we specialize|we are a|we are an|we are the|we offer|we provide|we supply"
    "|we manufacture|we produce|we have a project for you|introduce|introducing|our services|our solution"
    "|our platform|our clients|our customers include|case study|demo|quick call|short call|# minute call"
    "|# minute demo|book a|schedule a|would you be open|would it make sense|worth a conversation|your website"
    "|your site|your customers|your clients|your competitors|your team|your sales|capacity available"
    "|free audit|free consultation|per pallet|freight|logistics|groupage|leading provider|supplier|manufacturer"
    "|catalog|catalogue|partnership|oem|castings|machining|cnc|competitive prices"
    "|wir helfen|wir unterstützen|wir sind ein|wir sind eine|wir bieten|wir von|als unabhängiger|unser angebot"
    "|unsere leistungen|unsere kunden|ihre website|ihre kunden|ihren kunden|kostenlose analyse|unverbindlich"
    "|kurzes gespräch|stellen uns vor|vorstellen|freie kapazitäten|kapazitäten|lieferant|zulieferer|hersteller"
    "|nous proposons|nous accompagnons|nous aidons|nous sommes une|nous sommes un|notre agence|notre société"
    "|nos services|nos clients|votre site|vos clients|vos concurrents|démonstration|présenter|pour un industriel"
    "|fournisseur|fabricant"
    "|somos una empresa|somos un|ofrecemos|ayudamos|nuestra empresa|nuestros servicios|nuestros clientes"
    "|su web|su página|sus clientes|me pongo en contacto|mi nombre es|responsable comercial"
    "|capacidad disponible|tarifas|demostración|presentarles|proveedor|fabricante"
    "|siamo un'azienda|siamo una|offriamo|aiutiamo|la nostra azienda|i nostri servizi|i nostri clienti"
    "|il vostro sito|i vostri clienti|vi presento|presentarvi|abbiamo un progetto per voi|showreel"
    "|dimostrazione|proposta di collaborazione|collaborazione|rappresentare|fornitore|produttore"
    "|somos uma empresa|oferecemos|ajudamos|nossa empresa|nossos serviços|nossos clientes|o vosso site"
    "|o seu site|seus clientes|vossos clientes|temos um projeto para vocês|apresentação|apresentar"
    "|capacidade disponível|fornecedor"
    "|wij zijn|we zijn|wij bieden|we bieden|onze diensten|uw website|jullie website|jullie klanten"
    "|we hebben een project voor jullie",
    "job_applicant": "cv|curriculum|résumé|cover letter|application for|applying for|apply for|my application"
    "|position|vacancy|job|internship|career|graduate|degree|work experience|hiring"
    "|lebenslauf|bewerbung|bewerbe|anschreiben|stelle|stellenanzeige|praktikum|ausbildung|werkstudent"
    "|candidature|lettre de motivation|poste|stage|emploi|alternance|candidatura|currículum|vacante|empleo"
    "|prácticas|posizione|lavoro|tirocinio|currículo|vaga|emprego|estágio|sollicitatie|vacature",
    "newsletter": "newsletter|unsubscribe|subscribe|webinar|view in browser|view this email in your browser"
    "|view in your browser|manage preferences|manage your preferences|manage your subscription|you are receiving"
    "|this email was sent to|trade fair|exhibition|event|events|dear members|dear member|in this issue"
    "|this month|save the date|register now|agenda|seminar|workshop|news|members"
    "|liebe mitglieder|sehr geehrte mitglieder|rundschreiben|rundbrief|mitgliederinformation|in dieser ausgabe"
    "|diesen monat|jetzt anmelden|programm|neuigkeiten|mitglieder|abmelden|abbestellen|im browser|messe"
    "|veranstaltung|chers membres|chers adhérents|circulaire|dans ce numéro|ce mois ci|inscrivez vous"
    "|programme|séminaire|nouvelles|membres|désinscri*|désabonn*|salon|événement|estimados socios"
    "|estimados asociados|circular|en este número|este mes|inscríbase|programa|seminario|noticias|socios"
    "|darse de baja|suscripci*|feria|evento|cari soci|circolare|in questo numero|questo mese|iscriviti"
    "|programma|notizie|soci|disiscri*|iscrizione|fiera|caros associados|caros sócios|nesta edição|este mês"
    "|inscreva se|seminário|notícias|associados|descadastr*|inscrição|feira|nieuwsbrief|leden|afmelden",
    "other": "thank you|thanks|many thanks|danke|vielen dank|merci|gracias|grazie|obrigado|obrigada|bedankt"
    "|received|erhalten|bien reçu|recibido|ricevuto|recebido|wrong address|falsche adresse|mauvaise adresse"
    "|dirección equivocada|indirizzo sbagliato|endereço errado|birthday|geburtstag|anniversaire|cumpleaños"
    "|compleanno|aniversário|mom|dad|mama|papa|family|familie|famille|familia|famiglia|família|dinner"
    "|abendessen|dîner|cena|jantar|weekend|wochenende|fin de semana|fine settimana|fim de semana|out of office"
    "|abwesend|absent|ausente|assente",
    "addressee": "your pumps|your products|your company|your customers|your business|your production"
    "|your website|your team|your sales|for you|ihre pumpen|ihre produkte|ihr unternehmen|ihre kunden"
    "|ihre produktion|für sie|vos pompes|vos produits|votre entreprise|votre société|vos clients"
    "|votre production|pour vous|sus bombas|sus productos|su empresa|sus clientes|su producción"
    "|para ustedes|le vostre pompe|i vostri prodotti|la vostra azienda|i vostri clienti|per voi"
    "|as vossas bombas|os vossos produtos|a vossa empresa|os seus clientes|para vocês|jullie pompen"
    "|uw bedrijf|voor jullie",
    "scam": "bitcoin|crypto*|krypto*|criptomoned*|criptovalut*|criptomoeda*|investment platform"
    "|trading platform|returns|renda extra|ingresos extra|guadagno|guadagni|ganancias|lucro|profit|gewinn"
    "|gewinne|pix|mailbox full|mailbox is full|storage full|postfach voll|boîte pleine|buzón lleno"
    "|casella piena|caixa cheia|quota|verify|verifizieren|vérifier|verificar|verificare|password|passwort"
    "|mot de passe|contraseña|senha|login|customs fee|zollgebühr|frais de douane|tasas de aduana"
    "|dazi doganali|taxa alfandegária|parcel|paket|colis|paquete|pacco|delivery failed|inheritance"
    "|erbschaft|héritage|herencia|eredità|herança|beneficiary|begünstigter|bénéficiaire|beneficiario"
    "|beneficiário|lottery|lotterie|loterie|lotería|lotteria|loteria|congratulations|glückwunsch"
    "|félicitations|felicidades|congratulazioni|parabéns|urgent|dringend|urgente|confidential|vertraulich"
    "|confidentiel|confidencial|riservato",
}

# Hand-weighted signs of unsolicited bulk mail and phishing: (weight, phrases). Weights are tuned by hand.
_SPAM_PHRASES: dict[str, tuple[float, str]] = {
    "click here": (1.0, "click here|click below|click the link|click on the link|click this link"),
    "remove me": (1.9, "to be removed|remove me|remove yourself|remove your name|remove your address"
                  "|remove your e mail|remove your email|removal link|removal instructions|remove in the subject"
                  "|remove as the subject|no longer wish to receive|opt out|optout|taken off|one time mailing"
                  "|one time e mail|one time email|will not receive further|will not receive any further"),
    "not spam": (1.5, "not spam|not a spam|not unsolicited|s 1618|section 301"),
    "money": (1.3, "make money|earn up to|extra income|extra cash|cash bonus|cash prize|financial freedom|get paid"
              "|weekly income|monthly income|residual income|from your home|from the comfort of your home|huge profits"
              "|make huge|massive profits|fortunes|millionaire|get rich|rich quick"
              "|# million dollars|# billion dollars|# million usd"),
    "free offer": (1.2, "100 free|absolutely free|free gift|free trial|free offer|free membership|free access"
                   "|free report|risk free|no obligation|satisfaction guaranteed|money back|guaranteed"
                   "|no set up fees|no setup fees|no hidden fees|no hidden charges"),
    "act now": (1.3, "act now|order now|order today|buy now|call now|call today|call toll free|limited time"
                "|limited offer|offer expires|don't miss|dont miss|don't delete|do not delete|once in a lifetime"
                "|special promotion|visit our website|visit our web site|visit our site"),
    "pharma/adult": (1.6, "viagra|cialis|levitra|phentermine|xanax|online pharmacy|herbal|hgh|weight loss"
                     "|lose weight|lose # lbs|lose # pounds|penis|enlarg*|erection|webcam|xxx|porn*|nude|horny"
                     "|hot teens|casino|rolex|replica"),
    "erotic": (1.8, "erotik*|erotic*|sexabenteuer|seitensprung|sexually|hot girls|hot babes|babe|babes"
               "|pornodarsteller"),
    "loans/credit": (2.0, "mortgage|refinanc*|debt consolidation|bad credit|credit card debt|credit repair"
                     "|credit report|low rates|lowest rates|low interest rates|lowest interest rates|home loan"
                     "|pre approved|preapproved|insurance quote|insurance quotes|life insurance|term life|annuit*"
                     "|health insurance|underwriting|forex|bitcoin"
                     "|cryptocurrenc*"),
    "stock tip": (2.5, "otcbb|otc bb|pink sheets|undervalued|stock alert|stock pick|stock profile|strong buy"
                  "|investment opportunity|penny stock"),
    "advance fee": (2.5, "next of kin|beneficiary|barrister|confidential business|confidential transaction"
                    "|business proposal|transfer of the sum|transfer the sum|transfer of funds|transfer the funds"
                    "|late husband|late father|nigeria|compensation fund|inheritance|urgent business"
                    "|urgent assistance|urgent reply|urgent response|strictly confidential|foreign partner"
                    "|foreign account|diplomatic|deceased|# of the total|# of the sum|# of the fund|on exile"
                    "|son of the late|bank draft|security company|contract sum|over invoiced|reliable person"
                    "|absolute confidence|strict confidence"),
    "prize": (0.7, "congratulations|you've won|you have won|you won|you have been selected"
              "|you've been selected|you have been chosen|winner|lottery|claim your|sweepstakes|jackpot"
              "|powerball"),
    "work from home": (2.5, "work from home|work at home|home based business|business opportunity"
                       "|be your own boss|mlm|multi level|no recruiting|downline|no investment|no experience necessary"
                       "|no experience needed|no selling|no inventory"),
    "bulk mail": (1.4, "bulk e mail|bulk email|e mail marketing|email marketing|million e mail|million email"
                  "|targeted e mail|targeted email|e mail addresses|email addresses|fresh leads"),
    "cheap goods": (1.8, "cheap cigarettes|cheap tobacco|discount cigarettes|cheap smokes|cheap software"
                    "|discount software|inkjet|inkjets|toner cartridges|ink cartridges|descrambler|warez"
                    "|oem software|custom websites|custom web sites|custom web design|college degree"
                    "|college diploma|university degree|university diploma|university diplomas|cheap calls"
                    "|cheap meds|cigarettes|tobacco|long distance|calling card|per minute|domain names are"
                    "|register your domain|domain registration|web hosting|copy dvd|copy any dvd|dvd movies"
                    "|burn your own|gift card"
                    "|gift certificate"),
    "seo": (1.0, "seo|search engine optimization|search engine optimisation|search engine ranking"
            "|search engine placement|first page of google|backlinks|website traffic|search engines"),
    "phishing": (2.5, "verify your account|verify your identity|verify your information"
                 "|account has been suspended|account will be suspended|account suspended|account has been locked"
                 "|account locked|account will be closed|confirm your password|confirm your account"
                 "|confirm your identity|unusual sign in|unusual activity|security alert|update your payment"
                 "|update your billing|within 24 hours|password expires|password expired|password will expire"),
    "dear friend": (2.0, "dear friend|dear beloved|dear valued customer|dear account holder|dear e mail user"
                    "|dear email user|dear user|my dear|dear valued member"),
    "discount": (0.5, "# off|save up to #|lowest price|lowest prices|unbeatable|best prices"),
    "gratis": (0.8, "gratis|kostenlos|gewonnen|gewinnspiel|gratuit|ganador|ha vinto|ganhou"),
    "click here (translated)": (1.0, "hier klicken|klicken sie hier|cliquez ici|haga clic aquí|haz clic aquí"
                                 "|clicca qui|clique aqui|klik hier"),
    "account phishing": (2.0, "passwort läuft ab|ihr passwort|konto gesperrt|konto wird gesperrt|verifizieren sie"
                         "|votre mot de passe|compte suspendu|vérifiez votre|su contraseña|cuenta suspendida"
                         "|verifique su|la tua password|account sospeso|verifica il tuo|sua senha|conta suspensa"
                         "|verifique sua|uw wachtwoord|wachtwoord verloopt|account geblokkeerd|mailbox full"
                         "|mailbox is full|postfach ist voll|postfach voll|boîte aux lettres pleine|buzón lleno"
                         "|casella piena|caixa de correio cheia|your password|password will expire"),
    "parcel scam": (1.5, "customs fee|zollgebühr|zollgebühren|frais de douane|tasas de aduana|tasa de aduana"
                    "|dazi doganali|taxa alfandegária|your parcel|ihr paket|votre colis|su paquete|il tuo pacco"
                    "|o seu pacote|sua encomenda|uw pakket|delivery attempt|zustellversuch|tentative de livraison"
                    "|intento de entrega|tentativo di consegna|tentativa de entrega"),
    "crypto": (1.5, "bitcoin|crypto trading|kryptowährung|criptomonedas|criptovalute|criptomoedas|renda extra"
               "|ingresos extra|guadagni extra|passive income|passives einkommen|revenu passif|ingresos pasivos"),
    "unsolicited contact": (2.0, "i got your e mail|i got your email|i found your e mail|i found your email"
                            "|we got your email|we found your email|i got your contact|your contact was"
                            "|your email was given|your email address was|with due respect|i am mr|i am mrs"
                            "|i am dr|i am barrister|i am the son|i am the widow|no longer like us to contact you"
                            "|never pay retail|not listed on|not listed in|i obtained your|forgive the intrusion"
                            "|sorry for the intrusion|excuse the intrusion|this is a one time|one time only"),
}
_SPAM_WEIGHTS = {f"spam:{name}": weight for name, (weight, _) in _SPAM_PHRASES.items()}
_CUES = CueIndex({**_LEXICON, **{f"spam:{name}": spec for name, (_, spec) in _SPAM_PHRASES.items()}})

_SUBJECT_RULES: tuple[tuple[str, float, re.Pattern[str]], ...] = tuple((n, w, re.compile(p)) for n, w, p in (
    ("money in subject", 1.2, r"\$\d|\bfree\b|\d+%|\bcash\b|\bmoney\b"),
    ("junk after subject", 2.0, r"\s{4,}\S+\s*$|[\s(\[](?=(?:[a-z]*\d){2})(?=\d*[a-z])[a-z\d]{5,12}[\])]?\s*$"
                                r"|\s\d{2,}\.\d{3,}\s*$"),
    ("adv subject", 3.0, r"^\s*\[?adv\b|\badv:"),
))
_DANGEROUS_EXT = re.compile(r"\.(?:exe|scr|pif|com|bat|cmd|js|jse|vbs|vbe|wsf|hta|msi|jar|lnk|iso|img)$", re.I)
_ARCHIVE_EXT = re.compile(r"\.(?:zip|rar|7z|html?)$", re.I)
_REPLY_SUBJECT = re.compile(r"^\s*(?:re|aw|sv|rif|res)\s*:", re.I)
# Subdomains that newsletter senders dedicate to bulk mail ("newsletter.example.com"); spammers rarely bother.
_BULK_SENDER = re.compile(r"^(?:newsletters?|news|e?mail\d*|e|em|lists?|bounces?|alerts?|updates?|offers|promo\w*"
                          r"|marketing|mailer|mailings?)\.[\w-]+\.")
_ASIAN_CHARSET = re.compile(r"charset=\"?(?:gb2312|gbk|gb18030|big5|ks_c_5601|euc-kr|euc-jp|iso-2022-jp|shift_jis"
                            r"|x-sjis|windows-874|tis-620)", re.I)
_NEWSLETTER_NAME = re.compile(r"newsletter|\bissue (?:#|no\.? ?)?\d|\bedition\b|can't read this e-?mail"
                              r"|view (?:it|this e-?mail) (?:in|on) (?:your|a) (?:browser|web)")
_LATIN1_SYMBOLS = re.compile(r"[\u00a1-\u00bf]")  # ¿¤½«°: mojibake of a wrongly declared charset
_ENCODED_WORD = re.compile(r"=\?[\w-]+\?[bqBQ]\?")  # a header-style encoded word left undecoded in the text
_NUMBERED_LINE = re.compile(r"^\s*\d{1,2}\)+ ", re.M)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|wg|tr|rv|enc|i|doorst)\s*:", re.I)
_FORWARD_BODY = re.compile(r"forwarded message|original message|message d'origine|mensaje original|messaggio originale"
                           r"|mensagem original|ursprüngliche nachricht|weitergeleitete nachricht|doorgestuurd bericht")
_FORM_LINE = re.compile(r"^[ \t]*[\w][\w ./-]{1,24}:[ \t]*\S", re.M)
_CV_NAME = re.compile(r"\b(?:cv|lebenslauf|resume|résumé|curriculum|bewerbung|candidature)\b", re.I)
_CAPS_RE = re.compile(r"\b[A-Z]{3,}\b")
_NON_LATIN_RE = re.compile(r"[^\x00-\u024f\s]")


@dataclass
class Cues:
    """What the hand-written rules saw in one message."""

    tokens: list[str]
    lexicon: dict[str, int] = field(default_factory=dict)  # category -> cue phrases found
    phrases: set[str] = field(default_factory=set)  # the category cue phrases found
    spam: list[tuple[str, float]] = field(default_factory=list)  # (sign, weight) adding up to the spam score
    flags: list[str] = field(default_factory=list)  # structural signs, also fed to the text model

    @property
    def spam_score(self) -> float:
        return sum(w for _, w in self.spam)

    def business(self) -> int:
        return sum(self.lexicon.get(c, 0) for c in ("lead", "support", "accounting"))


def _shouting(subject: str) -> bool:
    letters = [c for c in subject if c.isalpha()]
    return len(letters) >= 10 and sum(c.isupper() for c in letters) >= 0.7 * len(letters)


def _own_message_id(email: Email) -> bool:
    """The Message-ID names the sender's domain, as the mail servers of real organisations write it."""
    domain = extract.domain_of(email.from_addr)
    return bool(domain) and extract.registrable_label(domain) in email.headers.get("message-id", "").lower()


def _names_recipient(email: Email, low: str) -> bool:
    """The text names the company it is sent to ("acme-pumps.example", "Acme Pumps"), as pitches do."""
    for addr in email.to[:3]:
        domain = extract.domain_of(addr)
        label = extract.registrable_label(domain) if domain else ""
        if len(label) >= 4 and (label in low or label.replace("-", " ") in low):
            return True
    return False


def _structure(email: Email, low: str, words: int) -> list[tuple[str, float, bool]]:
    """Signs in the form of a message rather than in its words: (name, spam weight, present)."""
    sample = email.text[:600]
    listed = "list-id" in email.headers or "list-post" in email.headers
    return [
        ("html only", 0.3, email.html_only),
        ("html, little text", 2.0, email.html_only and words < 60),
        ("shouting subject", 1.5, _shouting(email.subject)),
        ("shouting text", 1.3, words >= 20 and len(_CAPS_RE.findall(email.text)) / words > 0.25),
        ("dollar amounts", 0.6, low.count("$") >= 2),
        ("not in latin script", 1.3, len(_NON_LATIN_RE.findall(sample)) > 0.3 * len(sample.replace(" ", ""))),
        ("east asian charset", 1.2, bool(_ASIAN_CHARSET.search(email.headers.get("content-type", "")))),
        ("unknown language", 1.2, words >= 40 and function_word_share(email.text) < 0.04),
        ("names itself a newsletter", -0.8, bool(_NEWSLETTER_NAME.search(low[:400]))),
        ("feed item", -2.0, low.startswith("url: http", len(email.subject) + 2)),
        ("numbered offers", 1.7, low.count("http") >= 2 and len(_NUMBERED_LINE.findall(low)) >= 2),
        ("garbled text", 1.0, email.text.count("\ufffd") >= 5 or len(_LATIN1_SYMBOLS.findall(sample)) >= 8),
        ("raw encoded words", 1.5, "=?" in email.text and bool(_ENCODED_WORD.search(email.text))),
        ("executable attachment", 3.0, any(_DANGEROUS_EXT.search(a.filename) for a in email.attachments)),
        ("archive attachment", 1.0, any(_ARCHIVE_EXT.search(a.filename) for a in email.attachments)),
        ("reply-to elsewhere", 0.0, bool(email.reply_to) and not listed
         and not extract.is_automated_sender(email.from_addr)
         and extract.domain_of(email.reply_to) != extract.domain_of(email.from_addr)),
        ("undisclosed recipients", 1.5, "undisclosed" in email.headers.get("to", "").lower()),
        ("no from address", 0.8, not email.from_addr),
        ("no sender name", 0.9, not email.from_name.strip()),
        ("free-mail sender", 0.8, extract.is_free_mail(extract.domain_of(email.from_addr))),
        ("damaged message", 1.0, bool(email.defects)),
        ("reply without a thread", 0.3, bool(_REPLY_SUBJECT.match(email.subject))
         and not (email.in_reply_to or email.references)),
        ("message id of the sender", -0.5, _own_message_id(email)),
        ("bulk-mail service sender", -1.8, bool(_BULK_SENDER.match(extract.domain_of(email.from_addr)))),
        ("high priority", 2.0, email.headers.get("x-priority", "").strip()[:1] == "1"
         or "high" in email.headers.get("x-msmail-priority", "").lower()),
        ("personal mail program", -1.5, "user-agent" in email.headers),
        ("list-unsubscribe header", -0.9, "list-unsubscribe" in email.headers),
        ("part of a thread", -2.0, bool(email.in_reply_to or email.references)),
        ("quotes earlier mail", -1.0, bool(email.quoted.strip())),
        ("forwarded", 0.0, bool(_FORWARD_SUBJECT.match(email.subject)) or bool(_FORWARD_BODY.search(low))),
        ("reply", 0.0, bool(_REPLY_SUBJECT.match(email.subject))),
        ("web form", 0.0, extract.is_automated_sender(email.from_addr) or len(_FORM_LINE.findall(email.body)) >= 3),
        ("short", 0.0, words < 40),
        ("very short", 0.0, words < 15),
        ("attachment", 0.0, bool(email.attachments)),
        ("names the recipient", 0.0, _names_recipient(email, low)),
        ("cv attached", 0.0, any(_CV_NAME.search(a.filename) for a in email.attachments)),
        ("pdf attached", 0.0, any(a.filename.lower().endswith(".pdf") for a in email.attachments)),
    ]


def analyse(email: Email) -> Cues:
    """Run the hand-written cue rules over one message."""
    low = email.text.lower()
    cues = Cues(tokens=tokens(email.text))
    for name, phrase in _CUES.find(cues.tokens):
        if name in _SPAM_WEIGHTS:
            if (name[5:], _SPAM_WEIGHTS[name]) not in cues.spam:
                cues.spam.append((name[5:], _SPAM_WEIGHTS[name]))
        else:
            cues.lexicon[name] = cues.lexicon.get(name, 0) + 1
            cues.phrases.add(phrase)
    extra = [("money", 1.2, "$" in low and bool(_MONEY_RE.search(low))), ("!!!", 1.2, "!!!" in low),
             ("link to an ip address", 2.5, "http" in low and bool(_IP_LINK_RE.search(low)))]
    subject = email.subject.lower()
    extra += [(name, w, bool(p.search(subject))) for name, w, p in _SUBJECT_RULES]
    structural = _structure(email, low, max(1, len(cues.tokens)))
    business = cues.business()
    structural.append(("business words", -0.15 * min(3, business), business > 0))
    seen = {name for name, _ in cues.spam}
    cues.spam += [(name, w) for name, w, fired in extra if fired and name not in seen]
    cues.spam += [(name, w) for name, w, fired in structural if fired and w]
    cues.flags = [name for name, _, fired in structural if fired]
    if "cv attached" in cues.flags:
        cues.lexicon["job_applicant"] = cues.lexicon.get("job_applicant", 0) + 2
    return cues


def features(email: Email, cues: Cues) -> list[str]:
    """Word unigrams and bigrams of the text, subject words, and the cue tokens."""
    words = [w if not w.isdigit() or len(w) < 3 else "#num" for w in cues.tokens]
    feats = [w for w in words if len(w) > 1]
    if _BIGRAMS:
        feats += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    feats += ["s:" + w for w in tokens(email.subject)]
    for cat, n in cues.lexicon.items():
        feats += [f"!{cat}:{level}" for level in (1, 2, 4) if n >= level]
    feats += ["!p:" + p for p in sorted(cues.phrases)]
    if email.quoted:  # what the earlier mail was about: a reply to our quotation is a lead, to a claim support
        feats += sorted({"!quoted:" + group for group, _ in _CUES.find(tokens(email.quoted[:800]))})
    feats += ["!spam:" + name for name, _ in cues.spam] + ["!flag:" + f for f in cues.flags]
    return feats


def _bucket(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) & (_BUCKETS - 1)


def _softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -50 else 0.0


_LEAD_ADJUST = [(_LEAD_BIAS if c == "lead" else 0.0) for c in CATEGORIES]


@dataclass
class Model:
    """Per hashed feature one weight per category, a bias per category and a temperature (scale)."""

    prior: list[float]
    weights: dict[int, list[float]]
    scale: float = 1.0
    examples: dict[str, int] = field(default_factory=dict)

    def evidence(self, words: Sequence[int], cues: Sequence[int]) -> list[float]:
        """Unscaled category scores: bias, length-normalised word weights and the cue weights."""
        n = len(CATEGORIES)
        word_total, cue_total = [0.0] * n, [0.0] * n
        for buckets, total in ((words, word_total), (cues, cue_total)):
            for b in buckets:
                w = self.weights.get(b)
                if w is not None:
                    for i, x in enumerate(w):
                        total[i] += x
        xw = 1.0 / math.sqrt(max(1, len(words)))
        return [p + xw * t + _CUE_VALUE * c for p, t, c in zip(self.prior, word_total, cue_total, strict=True)]

    def probabilities(self, words: Sequence[int], cues: Sequence[int]) -> list[float]:
        """The text model's own category probabilities (before the spam stage)."""
        evidence = self.evidence(words, cues)
        return _softmax([self.scale * e + a for e, a in zip(evidence, _LEAD_ADJUST, strict=True)])

    def save(self, path: Path) -> None:
        """Write the model as JSON, atomically and readable only by the owner."""
        doc = {"version": MODEL_VERSION, "categories": list(CATEGORIES), "prior": self.prior,
               "scale": self.scale, "examples": self.examples,
               "weights": {str(b): [round(x, 4) for x in w] for b, w in self.weights.items()}}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, separators=(",", ":"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Model:
        """Read a saved model; ValueError when it is not one this version can use."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the model: {exc}") from None
        n = len(CATEGORIES)
        if not isinstance(doc, dict) or doc.get("version") != MODEL_VERSION \
                or tuple(doc.get("categories", ())) != CATEGORIES:
            raise ValueError("the model was made for another version or set of categories")
        try:
            prior = [float(x) for x in doc["prior"]]
            weights = {int(b): [float(x) for x in w] for b, w in doc["weights"].items()}
            scale = float(doc["scale"])
            examples = {str(k): int(v) for k, v in doc.get("examples", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError("the model file is malformed") from None
        if len(prior) != n or any(len(w) != n for w in weights.values()) or not 0 < scale < 100:
            raise ValueError("the model file is malformed")
        return cls(prior=prior, weights=weights, scale=scale, examples=examples)


Row = tuple[list[int], list[int], int]  # distinct word buckets, distinct cue buckets, category index


def _fit(rows: Sequence[Row]) -> Model:
    """Multinomial logistic regression by stochastic gradient descent; few epochs keep the weights small."""
    n = len(CATEGORIES)
    index: dict[int, int] = {}
    docs = [([index.setdefault(b, len(index)) for b in words], 1.0 / math.sqrt(max(1, len(words))),
             [index.setdefault(b, len(index)) for b in cues], label) for words, cues, label in rows]
    columns = [[0.0] * len(index) for _ in range(n)]  # one weight column per category: sum(map(...)) stays in C
    bias = [0.0] * n
    order = list(range(len(docs)))
    rng = random.Random(0)  # a fixed shuffle: the same gold set always gives the same model
    for epoch in range(_EPOCHS):
        rng.shuffle(order)
        rate = _LEARNING_RATE / (1.0 + epoch) ** 0.5
        for d in order:
            iw, xw, ic, label = docs[d]
            probs = _softmax([bias[c] + xw * sum(map(columns[c].__getitem__, iw))
                              + _CUE_VALUE * sum(map(columns[c].__getitem__, ic)) for c in range(n)])
            for c in range(n):
                gradient = probs[c] - (1.0 if c == label else 0.0)
                if abs(gradient) < _MIN_GRADIENT:
                    continue  # already fitted: skipping the update is most of the training speed
                column = columns[c]
                step = rate * gradient * xw
                for f in iw:
                    column[f] -= step
                step = rate * gradient * _CUE_VALUE * _CUE_RATE
                for f in ic:
                    column[f] -= step
                bias[c] -= rate * gradient * _BIAS_RATE
    weights = {b: [columns[c][i] for c in range(n)] for b, i in index.items()}
    counts = [sum(1 for *_, label in rows if label == i) for i in range(n)]
    return Model(prior=bias, weights=weights, examples={CATEGORIES[i]: counts[i] for i in range(n) if counts[i]})


def vectorize(feats: Iterable[int | str], buckets: Sequence[int]) -> tuple[list[int], list[int]]:
    """Split the hashed features into distinct word buckets and distinct cue buckets."""
    words: dict[int, None] = {}
    cues: dict[int, None] = {}
    for f, b in zip(feats, buckets, strict=True):
        (cues if isinstance(f, str) and f.startswith("!") else words)[b] = None
    return list(words), list(cues)


def train(examples: Iterable[tuple[Email, str]]) -> Model:
    """Fit the text model on labelled mail (labels outside CATEGORIES are skipped)."""
    rows: list[Row] = []
    for email, category in examples:
        if category in CATEGORIES:
            feats = features(email, analyse(email))
            rows.append((*vectorize(feats, [_bucket(f) for f in feats]), CATEGORIES.index(category)))
    return _fit(rows)


def combine(text_probs: Sequence[float], cues: Cues) -> dict[str, float]:
    """Final probabilities: the spam score with a bounded vote of the text model decides spam; the text model
    shares the rest among the other categories."""
    q = dict(zip(CATEGORIES, text_probs, strict=True))
    q_spam = min(max(q["spam"], 1e-9), 1 - 1e-9)
    low, high = _MODEL_SPAM_VOTE
    vote = min(high, max(low, _logit(q_spam) - _logit(_MODEL_SPAM_REF)))
    p_spam = _sigmoid(cues.spam_score - _SPAM_OFFSET + _MODEL_SPAM_WEIGHT * vote)
    probs = {c: (1 - p_spam) * q[c] / (1 - q_spam) for c in CATEGORIES if c != "spam"}
    probs["spam"] = p_spam
    return probs


def _usable(text: str) -> bool:
    """Enough text to judge: a few words, or a line of a script written without spaces."""
    return len(tokens(text)) >= 3 or sum(1 for c in text[:200] if c.isalpha()) >= 10


def _describe(feature: str) -> str:
    if feature.startswith(("!spam:", "!flag:")):
        return feature[6:]
    if feature.startswith("!"):
        return f"{feature[1:].partition(':')[0]} wording"
    if feature.startswith("s:"):
        return f"subject word {feature[2:][:30]}"
    return f"word {feature[:30]}"


class OfflineClassifier:
    """Classifies mail with a trained Model; needs no network and no key."""

    name = "offline"

    def __init__(self, model: Model, languages: Sequence[str], default_language: str, text_chars: int,
                 own_names: Sequence[str] = (), own_domains: Sequence[str] = ()) -> None:
        self.model = model
        self.languages = tuple(languages)
        self.default_language = default_language  # what the caller falls back to when `language` is None
        self.text_chars = text_chars
        self.own_names = tuple(own_names)
        self.own_domains = tuple(own_domains)
        self._buckets: dict[str, int] = {}  # hashing costs more than a lookup; words repeat from mail to mail

    def _bucket_ids(self, feats: Sequence[str]) -> list[int]:
        cache = self._buckets
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        out = []
        for f in feats:
            b = cache.get(f)
            if b is None:
                b = cache[f] = _bucket(f)
            out.append(b)
        return out

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        """Category, calibrated-ish confidence, language and the sender's details; never raises for bad mail."""
        language, _ = detect_language(email.text, self.languages)
        if email.defects and not _usable(email.text):
            return Classification(category="other", confidence=0.2, language=language, classifier=self.name,
                                  person_email=extract.person_email(email), reasons=("no usable text",),
                                  review_reason=f"unreadable message: {email.defects[0]}"[:200])
        cues = analyse(email)
        feats = features(email, cues)
        buckets = self._bucket_ids(feats)
        probs = combine(self.model.probabilities(*vectorize(feats, buckets)), cues)
        review_reason = None
        if hint is not None and hint.outcome == "hint":
            category, confidence, review_reason = _list_mail(probs)
        else:
            # Spam only on a majority: a plurality of a spread-out distribution is not evidence enough for trash.
            category = "spam" if probs["spam"] >= 0.5 else max(
                (c for c in CATEGORIES if c != "spam"), key=lambda c: probs[c])
            confidence = probs[category]
        if category in DISPOSABLE and cues.business() >= 2 and cues.spam_score < _SPAM_OFFSET + 2:
            confidence = min(confidence, _SAFE_CAP)  # it talks business: a person decides, nothing is trashed
        if category in DISPOSABLE:  # nobody answers bulk mail: the sender's details are not worth the time
            fields = extract.Fields(None, extract.person_email(email), None, None, False)
        else:
            fields = extract.extract_fields(email, self.own_names, self.own_domains)
        return Classification(
            category=category, confidence=round(confidence, 4), language=language, classifier=self.name,
            person_name=fields.person_name, person_email=fields.person_email, company=fields.company,
            company_domain=fields.company_domain, technical_rfq=category == "lead" and fields.technical_rfq,
            reasons=self._reasons(category, feats, buckets, cues), review_reason=review_reason)

    def _reasons(self, category: str, feats: Sequence[str], buckets: Sequence[int], cues: Cues) -> tuple[str, ...]:
        """The few features that pushed hardest towards the chosen category, in words a person can check."""
        idx = CATEGORIES.index(category)
        scored: dict[str, float] = {}
        for f, b in zip(feats, buckets, strict=True):
            w = self.model.weights.get(b)
            if w is not None and w[idx] > 0:
                scored[f] = w[idx]
        top = [_describe(f) for f in sorted(scored, key=lambda f: (-scored[f], f))[:3]]
        if category == "spam":
            top = [f"spam sign: {name}" for name, w in sorted(cues.spam, key=lambda r: -r[1]) if w > 0][:2] + top
        return tuple(dict.fromkeys(top))[:4]


def _list_mail(probs: dict[str, float]) -> tuple[str, float, str | None]:
    """Bulk/list mail is spam or newsletter, unless it clearly reads as business (then a person looks)."""
    business = max(_BUSINESS, key=lambda c: probs[c])
    if probs[business] >= 0.5:
        return business, probs[business], "business mail arrived through a mailing list"
    if probs["spam"] >= 0.5:
        return "spam", probs["spam"], None
    return "newsletter", 1.0 - probs["spam"], None


def _label_lines(gold_dir: Path) -> list[str]:
    merged = gold_dir / "labels.jsonl"
    paths = [merged] if merged.is_file() else sorted(gold_dir.glob("labels.part*.jsonl"))
    lines: list[str] = []
    for p in paths:
        lines += p.read_text(encoding="utf-8").splitlines()
    return lines


_GOLD_FILE = re.compile(r"^[\w.-]+\.eml$")


def gold_labels(gold_dir: Path) -> list[dict[str, Any]]:
    """The gold label records whose file name is a plain .eml name inside gold_dir."""
    records = []
    for line in _label_lines(gold_dir):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("file"), str) and _GOLD_FILE.match(rec["file"]) \
                and (gold_dir / rec["file"]).is_file():
            records.append(rec)
    return records


def base_examples(gold_dir: Path, split: str = "train", text_chars: int = 1500) -> list[tuple[Email, str]]:
    """The gold messages of one split with their categories: what the shipped model learns from."""
    from bot.mime import parse_email  # the parser is only needed when training

    out = []
    for rec in gold_labels(gold_dir):
        if rec.get("split") == split and rec.get("category") in CATEGORIES:
            raw = (gold_dir / rec["file"]).read_bytes()
            out.append((parse_email(raw, provider_id=rec["file"], thread_id=rec["file"], text_chars=text_chars),
                        rec["category"]))
    return out


def load_or_train(model_path: Path, gold_dir: Path, languages: Sequence[str], default_language: str,
                  text_chars: int, own_names: Sequence[str] = (), own_domains: Sequence[str] = ()
                  ) -> OfflineClassifier:
    """The saved model (what `learn` wrote) when it is valid, else a model trained on the gold train split."""
    model: Model | None = None
    if model_path.is_file():
        try:
            model = Model.load(model_path)
        except ValueError as exc:
            log.warning("ignoring the saved model at %s: %s; training on the gold set", model_path, exc)
    if model is None:
        model = train(base_examples(gold_dir, text_chars=text_chars))
    return OfflineClassifier(model, languages, default_language, text_chars, own_names, own_domains)
