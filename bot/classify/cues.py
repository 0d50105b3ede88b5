"""Hand-written cues: what a few hundred training messages cannot teach carries across languages through them.

analyse() runs them over one message: multilingual phrase lists per category and per intent (buying, selling,
asking, spare parts of installed equipment, dealers, phishing), signs of bulk mail with hand-set spam weights,
and signs in the form of a message (links that name the recipient, quantities, model codes, a thread). features()
turns the result, the sender's role (signature, display name, mailbox) and the words into the features the text
model weighs. The phrase matcher (CueIndex) reads a token list once, whatever the number of phrases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.classify import extract
from bot.classify.language import function_word_share
from bot.models import Email

_TOKEN_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
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


_Entry = tuple[tuple[str, ...], str, str]  # (words still to match, group, phrase)
# one-word phrases, {second word: entries}, entries whose second word is a pattern
_Head = tuple[list[tuple[str, str]], dict[str, list[_Entry]], list[_Entry]]


class CueIndex:
    """Phrase lists ("click here|interess*|lose # lbs") matched over a token list in one pass.

    A word ending in "*" matches by prefix (at least four letters before it), "#" matches any number. Phrases are
    indexed by their first and second word, so a common first word ("our", "the") costs one lookup, not a scan.
    """

    def __init__(self, groups: dict[str, str]) -> None:
        self._first: dict[str, _Head] = {}  # by first word
        self._stems: dict[str, list[tuple[str, tuple[str, ...], str, str]]] = {}
        for name, spec in groups.items():
            for phrase in spec.split("|"):
                head, *rest = phrase.split()
                if head.endswith("*"):
                    if len(head) < 5:
                        raise ValueError(f"stem too short: {head}")
                    self._stems.setdefault(head[:4], []).append((head[:-1], tuple(rest), name, phrase))
                    continue
                single, by_next, patterned = self._first.setdefault(head, ([], {}, []))
                if not rest:
                    single.append((name, phrase))
                elif rest[0] == "#" or rest[0].endswith("*"):
                    patterned.append((tuple(rest), name, phrase))
                else:
                    by_next.setdefault(rest[0], []).append((tuple(rest[1:]), name, phrase))

    def find(self, toks: Sequence[str]) -> list[tuple[str, str]]:
        """(group, phrase) of every match, in text order."""
        found: list[tuple[str, str]] = []
        first, stems = self._first, self._stems
        numeric = first.get("#")
        last = len(toks) - 1
        for i, tok in enumerate(toks):
            head = first.get(tok)
            if head is not None:
                self._extend(found, head, toks, i, last)
            if numeric is not None and tok.isdigit():
                self._extend(found, numeric, toks, i, last)
            candidates = stems.get(tok[:4])
            if candidates:
                found += [(name, phrase) for stem, rest, name, phrase in candidates
                          if tok.startswith(stem) and (not rest or _follows(toks, i + 1, rest))]
        return found

    @staticmethod
    def _extend(found: list[tuple[str, str]], head: _Head, toks: Sequence[str], i: int, last: int) -> None:
        single, by_next, patterned = head
        found += single
        if i < last:
            entries = by_next.get(toks[i + 1]) if by_next else None
            if entries:
                found += [(name, phrase) for tail, name, phrase in entries if not tail or _follows(toks, i + 2, tail)]
            if patterned:
                found += [(name, phrase) for rest, name, phrase in patterned if _follows(toks, i + 1, rest)]


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
    "|offerte|offerteaanvraag|prijsopgave|wij zoeken|we zoeken|levertijd"
    "|price list|pricelist|proposal|your offer|preisliste|ihr angebot|liste de prix|votre offre|lista de precios"
    "|su oferta|listino prezzi|proposta|vostra offerta|tabela de preços|lista de preços|prijslijst|uw offerte"
    "|your catalogue|your catalog|catalogue and prices|ihren katalog|votre catalogue|su catálogo|vostro catalogo"
    "|vosso catálogo|uw catalogus|jullie catalogus|which model|welches modell|quel modèle|qué modelo|quale modello"
    "|que modelo|welk model|discount|better price|rabatt|besseren preis|remise|meilleur prix|descuento|mejor precio"
    "|sconto|prezzo migliore|desconto|melhor preço|korting|betere prijs|private customers|privatkunden"
    "|particuliers|particulares|privati|particulieren",
    # Ordering words: in a reply to a quotation they make a lead, but "order now" is also the oldest spam line,
    # so they stay out of the business words that shield mail from the spam score.
    "ordering": "order|orders|place an order|place the order|bestellen|bestellung|commande|commander|commandons"
    "|pedido|ordine|ordinare|encomendar|encomenda|fechamos|bestelling|tarif|tarifa|listino",
    # A reseller or distributor asking for terms buys from us; a supplier offering to distribute for us sells.
    "dealer": "dealer|dealers|dealership|dealer terms|dealer conditions|dealer prices|reseller|resell|distributor"
    "|distribution rights|exclusive distribution|represent your|your products in|wholesaler|wholesale"
    "|händler|händlerkonditionen|händlerpreise|wiederverkäufer|vertriebspartner|großhändler|großhandel"
    "|revendeur|distributeur|distribution exclusive|grossiste|conditions revendeur|vos produits en"
    "|distribuidor|distribución exclusiva|revendedor|mayorista|sus productos en|rivenditore|distributore"
    "|distribuzione esclusiva|grossista|i vostri prodotti in|revendedor|distribuição exclusiva|grossista"
    "|os vossos produtos|dealerschap|dealervoorwaarden|wederverkoper|groothandel|groothandelaar",
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
    "|prácticas|posizione|lavoro|tirocinio|currículo|vaga|emprego|estágio|sollicitatie|vacature"
    "|working student|apprenticeship|apprenticeships|apprentice|thesis|school leaver|open positions|job opening"
    "|any openings|ausbildungsplatz|azubi|lehrstelle|bachelorarbeit|masterarbeit|abschlussarbeit|offene stellen"
    "|apprentissage|mémoire|postes ouverts|aprendiz|tesis|vacantes|apprendistato|tesi|posizioni aperte"
    "|aprendizagem|tese|vagas|afstudeer*|stageplaats|leerling",
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
    "|abwesend|absent|ausente|assente|thank you for your visit|thanks for the visit|thank you for the tour"
    "|danke für ihren besuch|danke für den besuch|merci pour votre visite|gracias por su visita"
    "|grazie per la visita|obrigado pela visita|bedankt voor het bezoek",
    "other brand": "grundfos|ksb|wilo|lowara|xylem|flygt|prominent|lutz|verder|netzsch|seepex|alfa laval|ebara"
    "|pedrollo|calpeda|caprari|iwaki|milton roy|graco|wilden|tapflo|sandpiper|yamada|another brand|other brand"
    "|different brand|another manufacturer|other manufacturer|not one of yours|not from you|andere marke"
    "|anderen hersteller|fremdfabrikat|autre marque|autre fabricant|otra marca|otro fabricante|altra marca"
    "|altro produttore|outra marca|outro fabricante|ander merk|andere fabrikant|new customer|neukunde"
    "|nouveau client|nuevo cliente|nuovo cliente|novo cliente|nieuwe klant|replacement|ersatz|remplacement"
    "|remplacer|sustituir|sustitución|reemplazar|sostituire|sostituzione|substituir|substituição|vervangen"
    "|vervanging|vervanger|competitor|competitor's|competing|switch supplier|change supplier|wettbewerber"
    "|fremdhersteller|lieferantenwechsel|hersteller wechseln|concurrent|concurrente|changer de fabricant"
    "|changer de fournisseur|competencia|competidor|cambiar de proveedor|concorrente|concorrenza"
    "|cambiare fornitore|concorrência|mudar de fornecedor|concurrent|andere leverancier|overstappen",
    "addressee": "your pumps|your products|your company|your customers|your business|your production"
    "|your website|your team|your sales|for you|ihre pumpen|ihre produkte|ihr unternehmen|ihre kunden"
    "|ihre produktion|für sie|vos pompes|vos produits|votre entreprise|votre société|vos clients"
    "|votre production|pour vous|sus bombas|sus productos|su empresa|sus clientes|su producción"
    "|para ustedes|le vostre pompe|i vostri prodotti|la vostra azienda|i vostri clienti|per voi"
    "|as vossas bombas|os vossos produtos|a vossa empresa|os seus clientes|para vocês|jullie pompen"
    "|uw bedrijf|voor jullie|your needs|your volumes|your requirements|your typical|do you currently"
    "|are you currently|are you planning|ihren bedarf|ihre anforderungen|sie planen|planen sie|ihr vertrieb"
    "|vos besoins|vos volumes|vous prévoyez|vos commerciaux|sus necesidades|sus volúmenes|vostre esigenze"
    "|vostri volumi|quantità annue|vossas necessidades|volumes habituais|uw behoeften|jullie volumes",
    # Who wants what: a buyer writes about what they need, a seller about what they offer, a customer with a
    # problem about what they already have. The same product words appear in all three.
    "buying": "we need|we are looking for|we're looking for|we require|we would like|we'd like|we want|we plan"
    "|we intend|we are planning|we are interested|i need|i am looking for|i'm looking for|i would like|i'd like"
    "|looking for a|looking for an|need a|need an|would need|for a new|for our new|new project|new plant"
    "|wir benötigen|wir brauchen|wir suchen|wir planen|wir möchten|wir würden gerne|wir hätten gerne|ich suche"
    "|ich benötige|ich brauche|ich möchte|benötigen wir|brauchen wir|für ein neues|für eine neue|neues projekt"
    "|nous cherchons|nous recherchons|nous avons besoin|nous souhaitons|nous aimerions|nous voudrions|je cherche"
    "|je recherche|j'ai besoin|je souhaite|nouveau projet|nouvelle installation"
    "|necesitamos|buscamos|queremos|quisiéramos|nos gustaría|estamos buscando|necesito|busco|me gustaría"
    "|nuevo proyecto|nueva planta|abbiamo bisogno|cerchiamo|vorremmo|stiamo cercando|ho bisogno|cerco|vorrei"
    "|nuovo progetto|nuovo impianto|precisamos|procuramos|gostaríamos|estamos à procura|preciso|procuro"
    "|gostaria|novo projeto|nova fábrica|wij zoeken|we zoeken|we hebben nodig|wij hebben nodig|we willen"
    "|wij willen|ik zoek|nieuw project|buy a new|to buy|kaufen|neue kaufen|acheter|comprar|comprare|mi serve|ci serve"
    "|kopen|aanschaffen",
    "selling": "we offer|we provide|we supply|we help|we can help|we can offer|we can supply|we can produce"
    "|we could help|we specialise|we specialize|we work with|we have helped|we deliver|our company offers"
    "|let me introduce|allow me to introduce|i would like to introduce|i'd like to introduce|i'm reaching out"
    "|i am reaching out|reaching out|i wanted to reach out|quick question|would you be interested|are you interested"
    "|wir bieten|wir helfen|wir unterstützen|wir liefern|wir fertigen|wir produzieren|wir können ihnen|gerne bieten"
    "|darf ich|möchten wir ihnen|möchte ich ihnen|nous proposons|nous offrons|nous aidons|nous fabriquons"
    "|nous pouvons vous|permettez moi|je me permets|ofrecemos|ayudamos|fabricamos|podemos ofrecer|le escribo"
    "|me permito|offriamo|aiutiamo|produciamo|possiamo offrire|mi permetto|oferecemos|ajudamos|fabricamos"
    "|podemos oferecer|venho apresentar|wij bieden|we bieden|wij helpen|we helpen|wij leveren|we leveren"
    "|happy to send|happy to share|happy to help|i'd be happy|we'd be happy|we would be happy|glad to send"
    "|we already work with|become your supplier|your supplier|gerne erstellen wir|erstellen wir ihnen"
    "|bieten wir ihnen|wir vermitteln|ihr lieferant|je vous propose|nous vous proposons|vous proposer"
    "|votre fournisseur|le proponemos|estaríamos encantados|su proveedor|saremmo lieti|vi proponiamo"
    "|vostro fornitore|gostaríamos de vos apresentar|teremos todo o gosto|vosso fornecedor|wij maken graag"
    "|uw leverancier",
    "asking": "could you|can you|would you|do you|are you able|is it possible|please send|please let me know"
    "|please advise|let me know|können sie|könnten sie|würden sie|haben sie|ist es möglich|bitte senden"
    "|bitte schicken|teilen sie uns|pourriez vous|pouvez vous|auriez vous|avez vous|est il possible|merci de nous"
    "|merci de m'envoyer|podrían|pueden|podría|tienen|es posible|por favor envíen|potreste|potete|potrebbe|avete"
    "|è possibile|vi chiediamo|poderiam|podem|poderia|vocês têm|é possível|por favor enviem|kunnen jullie"
    "|kunt u|heeft u|hebben jullie|is het mogelijk",
    "spare parts": "spare part|spare parts|spares|wear parts|replacement parts|repair kit|seal kit|service kit"
    "|diaphragm kit|ersatzteil*|verschleißteil*|dichtungssatz|reparatursatz|pièces de rechange|pièces détachées"
    "|kit de réparation|repuesto*|recambio*|kit de reparación|ricambi|ricambio|kit di riparazione|peças de reposição"
    "|peças sobressalentes|kit de reparação|reserveonderdelen|onderdelen|reparatieset",
    "installed base": "installed|in operation|in service|we have # pumps|we have several|we bought|we purchased"
    "|bought from you|supplied by you|delivered by you|you delivered|your technician|our existing|existing pump"
    "|existing pumps|serial|customer number|customer no|eingebaut|installiert|im einsatz|in betrieb|bei uns im"
    "|von ihnen geliefert|bei ihnen gekauft|ihr techniker|vorhandene|bestehende|seriennummer|kundennummer"
    "|installée|installé|en service|en fonctionnement|livrée par vous|votre technicien|existante|numéro de série"
    "|instalada|instalado|en funcionamiento|suministrada por ustedes|su técnico|existente|número de serie"
    "|installata|installato|in funzione|fornita da voi|vostro tecnico|esistente|numero di serie|instalada"
    "|em funcionamento|fornecida por vocês|vosso técnico|número de série|geïnstalleerd|in bedrijf"
    "|door jullie geleverd|bestaande|serienummer",
    # Phishing and fake invoices: a changed bank account, a document behind a link that expires or wants a login,
    # a threat of suspension, a customer addressed without a name.
    "phishing": "bank details have changed|our bank details have changed|new bank details|updated bank details"
    "|changed our bank|secure document|shared a document|shared with you|has been shared|shared document"
    "|view invoice|view the invoice|download invoice|download the invoice|review document|view document"
    "|open document|document portal|customer portal|pay online|link expires|link will expire|expires in # hours"
    "|valid for # hours|sign in with|log in with|login with|your credentials|avoid suspension|suspension of your"
    "|late fees|final notice|action required|dear customer|dear client|business directory|directory listing"
    "|neue bankverbindung|bankverbindung hat sich geändert|letzte mahnung|zahlung online"
    "|sehr geehrter kunde|sehr geehrte kundin|kundenportal|link ist # stunden|# stunden gültig|zugangsdaten"
    "|konto gesperrt|konto eingeschränkt|zugang gesperrt|eintragung ihres|ihres eintrags|firmenverzeichnis"
    "|branchenverzeichnis|branchenbuch"
    "|nouvelles coordonnées bancaires|dernier rappel|cher client|chère cliente|suspension de votre"
    "|a été partagé|document partagé|ce lien expirera|connectez vous|identifiants|annuaire"
    "|nuevos datos bancarios|suspensión del servicio|haga clic|estimado cliente|próximas # horas"
    "|descargue la factura|documento compartido|el enlace caduca|inicie sesión|sus credenciales"
    "|nuove coordinate bancarie|gentile cliente|entro # ore|documento condiviso|il link scade|accedi con"
    "|le tue credenziali|novos dados bancários|caro cliente|prezado cliente|exmo cliente|exmo a cliente"
    "|nas próximas # horas|ver fatura|documento partilhado|o link expira|inicie sessão|juros de mora"
    "|geachte relatie|beste klant|incassobureau|incassokosten|betaalknop|laatste aanmaning|binnen # uur"
    "|gedeeld document|de link verloopt|log in met|inloggegevens|geachte klant"
    "|unusual activity|ungewöhnliche aktivität|activité inhabituelle|actividad inusual|attività insolita"
    "|atividade incomum|ongebruikelijke activiteit|reactivate|reaktivieren|réactiver|reactivar|riattivare|reativar"
    "|heractiveren|verifique|verifiëren|verifica i|taxpayer|steuerpflichtige|contribuable|contribuyente"
    "|contribuente|contribuinte|belastingplichtige|new account below|our new account|old account|do not call"
    "|within # hours|innerhalb von # stunden|dans les # heures|en # horas|antes de # horas|entro # ore"
    "|em # horas|no prazo de # horas|binnen # uur",
    # An order, serial or ticket number: mail about something that already exists (support, accounting).
    "reference": "serial #|serial no #|serial number #|s n #|sn #|order #|order no #|order number #|po #|po no #"
    "|ticket #|case #|rma #|auftrag #|auftragsnummer #|bestellnummer #|bestellung #|seriennummer #|commande #"
    "|commande n #|numéro de série #|pedido #|pedido n #|número de serie #|ordine #|ordine n #|numero di serie #"
    "|encomenda #|encomenda n #|número de série #|bestelling #|bestelnummer #|serienummer #",
    "personal": "love|hugs|kisses|xoxo|kiss|darling|honey|sweetheart|grandma|grandpa|uncle|aunt|party"
    "|liebe grüße|kuss|küsse|oma|opa|bisous|bises|mamie|papi|besos|abrazos|abuela|abuelo|baci|bacioni|nonna"
    "|nonno|beijos|beijinhos|avó|avô|kusjes|liefs|oma|opa|neighbours|nachbarn|voisins|vecinos|vicini|vizinhos"
    "|buren",
    # Scams name what they are after. Only words that say so: single everyday words ("urgent", "confidential",
    # "password", "parcel", "profit") are as common in business mail and stay ordinary words the model weighs.
    "scam": "bitcoin|crypto*|krypto*|criptomoned*|criptovalut*|criptomoeda*|investment platform"
    "|trading platform|renda extra|ingresos extra|guadagno facile|pix|mailbox full|mailbox is full|storage full"
    "|postfach voll|boîte pleine|buzón lleno|casella piena|caixa cheia|customs fee|zollgebühr|frais de douane"
    "|tasas de aduana|dazi doganali|taxa alfandegária|delivery failed|inheritance|erbschaft|héritage|herencia"
    "|eredità|herança|beneficiary|begünstigter|bénéficiaire|beneficiario|beneficiário|lottery|lotterie|loterie"
    "|lotería|lotteria|loteria",
}

# What the sender's own job title or mailbox says (signature, display name, address): who writes to sales.
_ROLES = CueIndex({
    "buyer": "purchasing|procurement|purchaser|buyer|sourcing|supply chain|einkauf|einkäufer|einkäuferin|beschaffung"
    "|achats|acheteur|acheteuse|approvisionnement|compras|comprador|compradora|aprovisionamiento|acquisti|buyer"
    "|approvvigionamento|suprimentos|inkoop|inkoper",
    "seller": "sales|business development|account executive|account manager|key account|marketing|growth"
    "|partnerships|partner manager|customer success|seo|consultant|agency|vertrieb|verkauf|außendienst|berater"
    "|commercial|commerciale|comercial|ventas|vendite|vendas|verkoop|adviseur|agenzia|agencia|agence",
    "technical": "maintenance|engineer|engineering|plant manager|operations|production|technical|technician"
    "|instandhaltung|betriebsleiter|betriebsleitung|ingenieur|technik|techniker|werkstatt|produktion|leiter technik"
    "|entretien|maintenance|technique|ingénieur|mantenimiento|ingeniero|técnico|producción|manutenzione|ingegnere"
    "|tecnico|produzione|manutenção|engenheiro|produção|onderhoud|technische dienst|monteur",
    "finance": "accounts|accounting|finance|billing|controller|controlling|treasury|buchhaltung|finanzbuchhaltung"
    "|rechnungswesen|kreditoren|debitoren|comptabilité|comptable|facturation|contabilidad|contable|facturación"
    "|contabilità|amministrazione|contabilidade|financeiro|faturamento|boekhouding|administratie|crediteuren",
    "student": "student|studentin|student at|university|universität|hochschule|étudiant|étudiante|université|école"
    "|estudiante|universidad|studente|studentessa|università|politecnico|estudante|universidade|hogeschool"
    "|universiteit",
})
_PERSONAL_LINK = frozenset({"link names the recipient", "borrows the recipient's name"})
_LOCAL_WORDS = re.compile(r"[a-zà-ÿ]+")

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
_FORWARD_BODY = re.compile(r"forwarded message|original message|message d'origine|mensaje original|messaggio originale"
                           r"|mensagem original|ursprüngliche nachricht|weitergeleitete nachricht|doorgestuurd bericht")
_FORM_LINE = re.compile(r"^[ \t]*[\w][\w ./-]{1,24}:[ \t]*\S", re.M)
_CV_NAME = re.compile(r"\b(?:cv|lebenslauf|resume|résumé|curriculum|bewerbung|candidature)\b", re.I)
_CAPS_RE = re.compile(r"\b[A-Z]{3,}\b")
_URL_PART = re.compile(r"https?://([^/\s?#>\"']+)([^\s>\"']*)")
# On the lower-cased text (no IGNORECASE: it makes these scans several times slower).
_QUANTITY = re.compile(r"\d\s*(?:x\b|pcs\b|pc\b|pieces\b|units?\b|nos\b|stück\b|stk\b|st\.|pièces\b|unités\b"
                       r"|unidades\b|uds\b|pezzi\b|pz\b|unità\b|peças\b|unid\b|stuks\b)")
_QUANTITY_FIELD = re.compile(r"(?:qty|quantit[yàé]|menge|anzahl|cantidad|quantidade|aantal)\s*[:.]?\s*\d")
_MODEL_CODE = re.compile(r"[A-Z]{2,6}[- ]?\d{2,5}[A-Z]?\b")  # "AMD-40", "AP 125", "DL6" is too short
# "our AMD-25", "unsere 6 AP-125": equipment the writer already has, named by its model code (the words before it).
_OWN_BEFORE = re.compile(r"\b(?:our|unsere[nmrs]?|notre|nos|nuestr[oa]s?|nostr[aeio]|noss[oa]s?|onze)\s+(?:\d+\s+)?"
                         r"(?:\w+\s+)?$")
_NEWSLETTER_HINTS = ("newsletter", "issue", "edition", "read this", "view ")
_NON_LATIN_RE = re.compile(r"[^\x00-\u024f\s]")


# Structural flags read from headers (sender, recipients, threading, mail program): left out of training where the
# headers are placeholders (see bot.classify.features).
HEADER_FLAGS = frozenset({
    "east asian charset", "reply-to elsewhere", "undisclosed recipients", "no from address", "no sender name",
    "free-mail sender", "reply without a thread", "message id of the sender", "bulk-mail service sender",
    "high priority", "personal mail program", "list-unsubscribe header", "part of a thread", "web form",
    "names the recipient", "link names the recipient", "borrows the recipient's name"})


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
        ("names itself a newsletter", -0.8, _names_itself_a_newsletter(low[:400])),
        ("feed item", -4.0, low.startswith("url: http", len(email.subject) + 2)),
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
        ("forwarded", 0.0, bool(extract.FORWARD_SUBJECT.match(email.subject)) or bool(_FORWARD_BODY.search(low))),
        ("reply", 0.0, bool(_REPLY_SUBJECT.match(email.subject))),
        ("web form", 0.0, extract.is_automated_sender(email.from_addr) or len(_FORM_LINE.findall(email.body)) >= 3),
        ("short", 0.0, words < 40),
        ("very short", 0.0, words < 15),
        ("attachment", 0.0, bool(email.attachments)),
        ("names the recipient", 0.0, _names_recipient(email, low)),
        ("cv attached", 0.0, any(_CV_NAME.search(a.filename) for a in email.attachments)),
        ("pdf attached", 0.0, any(a.filename.lower().endswith(".pdf") for a in email.attachments)),
        ("quantity", 0.0, bool(_QUANTITY.search(low) or _QUANTITY_FIELD.search(low))),
        *_model_codes(email.text),
        ("question", 0.0, "?" in email.body),
        ("several questions", 0.0, email.body.count("?") >= 2),
        *_link_signs(email, low),
    ]


def _names_itself_a_newsletter(opening: str) -> bool:
    return any(h in opening for h in _NEWSLETTER_HINTS) and bool(_NEWSLETTER_NAME.search(opening))


def _model_codes(text: str) -> list[tuple[str, float, bool]]:
    """A product code in the text, and whether the writer calls it theirs (an installed unit, not a wish)."""
    found = own = False
    for m in _MODEL_CODE.finditer(text):
        start = m.start()
        if start and text[start - 1].isalnum():
            continue  # inside a longer word or number
        found = True
        if _OWN_BEFORE.search(text, max(0, start - 40), start):
            own = True
            break
    return [("model code", 0.0, found), ("names its own model", 0.0, own)]


def _link_signs(email: Email, low: str) -> list[tuple[str, float, bool]]:
    """A link that carries the recipient's address or domain (a personalised phishing page); a sender or link host
    that borrows the recipient's name without being its domain."""
    own = {extract.domain_of(a) for a in email.to[:3]} - {""}
    labels = {lb for lb in (extract.registrable_label(d) for d in own) if len(lb) >= 4}
    if not labels:
        return [("link names the recipient", 0.0, False), ("borrows the recipient's name", 0.0, False)]
    sender_domain = extract.domain_of(email.from_addr)
    sender = extract.registrable_label(sender_domain) if sender_domain else ""
    name = email.from_name.lower()
    personal = False
    borrowed = sender not in labels and any(lb in sender_domain or lb in name for lb in labels)
    if "http" in low:
        for m in _URL_PART.finditer(low[:3000]):
            host, rest = m.group(1), m.group(2)
            personal = personal or any(a in rest for a in email.to[:3]) or any(lb in rest for lb in labels)
            borrowed = borrowed or (any(lb in host for lb in labels)
                                    and extract.registrable_label(host) not in labels)
    return [("link names the recipient", 0.0, personal), ("borrows the recipient's name", 0.0, borrowed)]


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
    cues.flags = [name for name, _, fired in structural if fired]
    phishing = cues.lexicon.get("phishing", 0)
    extra += [("phishing wording", 1.5, phishing >= 2),
              ("phishing link", 1.5, phishing >= 1 and bool(_PERSONAL_LINK.intersection(cues.flags)))]
    seen = {name for name, _ in cues.spam}
    cues.spam += [(name, w) for name, w, fired in extra if fired and name not in seen]
    cues.spam += [(name, w) for name, w, fired in structural if fired and w]
    if "cv attached" in cues.flags:
        cues.lexicon["job_applicant"] = cues.lexicon.get("job_applicant", 0) + 2
    return cues


def features(email: Email, cues: Cues) -> list[str]:
    """Word unigrams and bigrams of the text, subject words, and the cue tokens."""
    words = [w if not w.isdigit() or len(w) < 3 else "#num" for w in cues.tokens]
    feats = [w for w in words if len(w) > 1]
    feats += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    feats += ["s:" + w for w in tokens(email.subject)]
    for cat, n in cues.lexicon.items():
        feats += [f"!{cat}:{level}" for level in (1, 2, 4) if n >= level]
    feats += ["!p:" + p for p in sorted(cues.phrases)]
    if email.quoted:  # what the earlier mail was about: a reply to our quotation is a lead, to a claim support
        feats += sorted({"!quoted:" + group for group, _ in _CUES.find(tokens(email.quoted[:800]))})
    feats += ["!spam:" + name for name, _ in cues.spam] + ["!flag:" + f for f in cues.flags]
    feats += ["!role:" + r for r in _roles(email)]
    return feats


def _roles(email: Email) -> list[str]:
    """Role groups named in the signature, the display name or the sender's mailbox name."""
    local = email.from_addr.partition("@")[0]
    text = (f"{email.signature[-400:]}\n{email.body[-200:]}\n{email.from_name}\n"
            f"{' '.join(_LOCAL_WORDS.findall(local))}")
    return sorted({group for group, _ in _ROLES.find(tokens(text))})
