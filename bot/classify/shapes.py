"""Shapes of sales-inbox mail that a rule recognises exactly: read receipts, out-of-office replies written without
the headers that announce them, a person asking to be taken off a list or to have their data deleted, and mail
about something the sender already bought. Each returns the evidence it found (for the audit row) or None.
"""

from __future__ import annotations

import re

from bot.models import Email

_RECEIPT_SUBJECT = re.compile(
    r"^\s*(?:(?:not |nicht )?read|gelesen|nicht gelesen|lu|non lu|le[íi]do|no le[íi]do|letto|non letto|lido"
    r"|n[ãa]o lido|gelezen|niet gelezen|l[äa]st|læst|przeczytan[ay]|přečteno)\s*:"
    r"|^\s*(?:read receipt|return receipt|lesebest[äa]tigung|accus[ée] de lecture|confirmaci[óo]n de lectura"
    r"|conferma di lettura|confirma[çc][ãa]o de leitura|leesbevestiging)\b", re.I)
_RECEIPT_BODY = re.compile(
    r"^\s*(?:your message|ihre nachricht|votre message|su mensaje|il (?:suo|tuo) messaggio|a sua mensagem"
    r"|uw bericht)\b.{0,200}?\b(?:was read|has been read|wurde .{0,40}gelesen|a été lu|fue le[íi]do|ha sido le[íi]do"
    r"|è stato letto|foi lida|is gelezen)", re.I | re.S)


def read_receipt(email: Email) -> str | None:
    """A read receipt (message disposition notification), with or without its proper MIME type."""
    ctype = email.headers.get("content-type", "").lower()
    if "multipart/report" in ctype and "disposition-notification" in ctype:
        return "header Content-Type: a disposition notification (read receipt)"
    if "original-message-id" in email.headers and _RECEIPT_SUBJECT.search(email.subject):
        return f'subject "{email.subject[:60]}" is a read receipt'
    if _RECEIPT_SUBJECT.search(email.subject) and (len(email.body) < 800 or _RECEIPT_BODY.search(email.body[:600])):
        return f'subject "{email.subject[:60]}" is a read receipt'
    return None


_OOO_BODY = re.compile(
    r"\b(?:i am|i'm|i will be|i'll be|i am currently|i'm currently) (?:out of (?:the )?office|away|on (?:annual |"
    r"parental |sick )?leave|on holiday|on vacation|travell?ing|not in the office|off)\b"
    r"|\bthank you for your (?:e-?mail|message)\.? i am (?:currently )?(?:out|away)"
    r"|\b(?:ich bin|bin ich) (?:bis|vom|ab|derzeit|zurzeit|momentan|leider)?\b.{0,40}?(?:nicht im (?:büro|haus)|"
    r"abwesend|außer haus|ausser haus|im urlaub|nicht erreichbar)"
    r"|\bje (?:suis|serai) (?:absent|absente|en congés?|en vacances|hors du bureau|en déplacement)\b"
    r"|\b(?:estoy|estaré) (?:fuera de la oficina|ausente|de vacaciones|de viaje)\b"
    r"|\b(?:sono|sarò) (?:fuori (?:ufficio|sede)|assente|in ferie)\b"
    r"|\b(?:estou|estarei) (?:ausente|fora do escrit[óo]rio|de f[ée]rias)\b"
    r"|\bik ben (?:afwezig|niet aanwezig|met vakantie|op vakantie|niet op kantoor)\b", re.I | re.S)
_BACK_ON = re.compile(
    r"\b(?:until|till|back on|return(?:ing)? on|bis (?:zum|einschließlich|am)?|jusqu'(?:au|à)|de retour le"
    r"|hasta(?: el)?|fino al|de volta (?:a|em)|até (?:ao|dia)?|tot en met|terug op|t/m|vom .{1,20} bis)\b", re.I)


def out_of_office(email: Email) -> str | None:
    """An absence notice written like ordinary mail (no Auto-Submitted header): short, it says the writer is away
    and until when."""
    opening = email.body[:400]
    if len(email.body) > 1500 or not _BACK_ON.search(opening):
        return None
    m = _OOO_BODY.search(opening)
    return f'it says "{" ".join(m.group(0).split())[:60]}": an absence notice' if m else None


_PERSON_REQUEST = re.compile(
    r"\b(?:please |kindly )?(?:remove|unsubscribe|delete|take) me (?:from|off)\b|\bunsubscribe me\b"
    r"|\bi (?:want|wish|would like|'d like) to (?:unsubscribe|be removed|opt out)\b|\bstop (?:sending|emailing) me\b"
    r"|\b(?:delete|erase|remove) (?:all )?(?:my|our) (?:personal )?(?:data|details|information)\b"
    r"|\bright to (?:erasure|be forgotten|access)\b|\bsubject access request\b|\bgdpr\b|\bdsgvo\b|\brgpd\b"
    r"|\bart(?:\.|icle|ikel)? ?1[57] (?:gdpr|dsgvo|rgpd|avg)\b"
    r"|\b(?:bitte )?(?:nehmen sie mich|streichen sie mich|löschen sie (?:mich|meine (?:daten|adresse)))\b"
    r"|\baus (?:dem|ihrem) (?:verteiler|newsletter) (?:nehmen|streichen|austragen)\b|\bmeine daten löschen\b"
    r"|\b(?:désinscri(?:re|vez)-moi|retirez-moi|supprimez mes données|merci de me désinscrire)\b"
    r"|\b(?:darme de baja|denme de baja|eliminen mis datos|borren mis datos|no me envíen más)\b"
    r"|\b(?:cancellatemi|cancellate i miei dati|rimuovetemi|non inviatemi più)\b"
    r"|\b(?:descadastr(?:ar|em)|removam os meus dados|apaguem os meus dados|remover o meu e-?mail|não me enviem)\b"
    r"|\b(?:schrijf me uit|verwijder mij|verwijder mijn gegevens|uitschrijven graag)\b", re.I)


def personal_request(email: Email) -> str | None:
    """A person asking to be taken off a list or to have their data deleted: never thrown away."""
    if email.bulk_footer or "list-id" in email.headers or "list-unsubscribe" in email.headers:
        return None  # the list's own footer says "unsubscribe", not the person
    m = _PERSON_REQUEST.search(f"{email.subject}\n{email.body[:1500]}")
    return f'a person asks: "{" ".join(m.group(0).split())[:50]}"' if m else None


_SUPPORT = re.compile(
    r"\b(?:serial(?: number| no\.?)?|s/n|sn|seriennummer|numéro de série|n[úu]mero de s[ée]rie|numero di serie"
    r"|serienummer)\s*[:#.]?\s*[A-Z0-9-]*\d"
    r"|\b(?:order|auftrag|bestellung|commande|pedido|ordine|encomenda|bestelling|ticket|case|rma|claim)"
    r"\s*(?:no\.?|nr\.?|number|nummer|n[°ºo]\.?|#)\s*[:#]?\s*[A-Z]{0,4}-?\d{3,}"
    r"|\b(?:error|fehler(?:code)?|code d'erreur|erreur|c[óo]digo de error|codice (?:di )?errore|errore"
    r"|c[óo]digo de erro|foutcode|foutmelding|alarm)\s*(?:code\s*)?[:#]?\s*[A-Z]{0,3}-?\d{1,4}\b"
    r"|\b(?:not working|doesn'?t work|does not work|stopped working|no longer works|won'?t start|keeps failing"
    r"|funktioniert nicht|geht nicht mehr|ne fonctionne (?:pas|plus)|ne marche (?:pas|plus)|no funciona"
    r"|dej[óo] de funcionar|non funziona|smesso di funzionare|n[ãa]o funciona|parou de funcionar|werkt niet"
    r"|doet het niet)\b"
    r"|\b(?:outage|is down|went down|service down|störung|ausgefallen|panne|en panne|aver[íi]a|guasto"
    r"|avaria|storing)\b"
    r"|\b(?:warranty (?:claim|repair|case)|under warranty|guarantee claim|garantiefall|garantieanspruch"
    r"|unter garantie|sous garantie|en garant[íi]a|in garanzia|em garantia|onder garantie)\b"
    r"|\b(?:invoice|rechnung|facture|factura|fattura|fatura|factuur)\s*(?:no\.?|nr\.?|number|nummer|n[°ºo]\.?|#)?"
    r"\s*[:#]?\s*[A-Z]{0,4}-?\d{3,}|\b(?:refund|reembolso|rimborso|remboursement|rückerstattung|terugbetaling"
    r"|credit note|gutschrift|note de cr[ée]dit|nota de cr[ée]dito|nota di credito|creditnota)\b", re.I)
_ALREADY_MINE = re.compile(
    r"\b(?:my|our) (?:last |recent |current |previous |existing |other )?(?:order|orders|subscription|invoice|bill"
    r"|package|parcel|delivery|shipment|booking|reservation|purchase|refund|reimbursement|warranty|contract"
    r"|account|tickets?|payment)\b"
    r"|\b(?:can'?t|cannot|unable to) (?:log ?in|sign ?in|access|open) |\b(?:cancel|close|delete|change|track)"
    r" (?:my|our) (?:account|subscription|order|booking|reservation)\b|\b(?:reset|forgot|lost) (?:my )?password\b"
    r"|\b(?:meine[nrm]?|unsere[nrm]?) (?:bestellung|rechnung|lieferung|buchung|reservierung|sendung|paket|abo)\b"
    r"|\b(?:ma|notre) (?:commande|facture|livraison|réservation)\b|\b(?:mon|notre) (?:colis|abonnement|compte)\b"
    r"|\b(?:mi|nuestro|nuestra) (?:pedido|factura|reserva|envío|paquete|suscripción)\b"
    r"|\b(?:il mio|il nostro) (?:ordine|pacco|abbonamento)\b|\b(?:la mia|la nostra) (?:fattura|prenotazione"
    r"|spedizione|consegna)\b|\b(?:a minha|minha|a nossa) (?:encomenda|fatura|reserva|assinatura)\b"
    r"|\b(?:o meu|meu|o nosso) (?:pedido|pacote|contrato)\b"
    r"|\b(?:mijn|onze) (?:bestelling|factuur|pakket|boeking|reservering|abonnement|levering)\b", re.I)
_NEW_PURCHASE = re.compile(
    r"\b(?:new|another|additional|second|extra|replacement|more)\s+(?:\w+\s+)?(?:units?|machines?|pumps?|licen[cs]es?"
    r"|seats?|systems?|devices?|order)\b|\b(?:neue[nmrs]?|weitere[nmrs]?|zusätzliche[nmrs]?)\b"
    r"|\b(?:nouve(?:au|lle|aux)|supplémentaires?)\b|\b(?:nuev[oa]s?|adicional(?:es)?|otr[oa]s?)\b"
    r"|\b(?:nuov[oaie]|altr[oaie]|aggiuntiv[oaie])\b|\b(?:nov[oa]s?|adiciona(?:l|is)|outr[oa]s?)\b"
    r"|\b(?:nieuwe?|extra|aanvullende?)\b|\b(?:replace|replacement|remplacer|remplacement|ersetzen|ersatz f[üu]r"
    r"|sustituir|reemplazar|sostituire|sostituzione|substituir|vervangen|vervanging)\b", re.I)


def support_signals(email: Email) -> str | None:
    """Mail about something the sender already has (a serial, order or invoice number, an error code, a warranty,
    "not working", an outage, a refund) and no word of buying something new: that outweighs lead wording."""
    text = f"{email.subject}\n{email.body[:3000]}"
    m = _SUPPORT.search(text) or _ALREADY_MINE.search(text)
    if m is None or _NEW_PURCHASE.search(text):
        return None
    return f'about something already bought ("{" ".join(m.group(0).split())[:40]}")'
