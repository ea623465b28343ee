"""The printable access copy: the JSON copy rendered as HTML in the
requester's language, with the article 15 information. Jinja2 autoescapes
every value, so visitor text shows as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup

from jutella.i18n import local_minutes
from jutella.settings import Settings
from jutella.templating import render

from .notice import notice

LABELS = {
    "fi": {"title": "Jäljennös henkilötiedoistasi", "generated": "Laadittu", "conversations": "Chat-keskustelut",
           "offline": "Sähköpostilomakkeella jätetyt viestit", "emails": "Sinulle lähetetyt sähköpostit",
           "flags": "Merkinnät", "objection": "Suoramarkkinoinnin kielto", "restriction": "Käsittelyn rajoitus",
           "yes": "kyllä", "no": "ei", "none": "Ei tietoja.", "started": "Aloitettu", "metadata": "Automaattiset tiedot",
           "author": {"visitor": "Sinä", "agent": "Asiakaspalvelija", "system": "Järjestelmä"},
           "labels": "Tunnisteet", "note": "sisäinen muistiinpano",
           "replies": "Vastaukset", "info": "Tietoa käsittelystä (15 artikla)",
           "name": "Nimi", "email": "Sähköposti", "message": "Viesti", "browser": "Selain", "os": "Käyttöjärjestelmä",
           "referrer": "Viittaava sivu", "page": "Sivu", "current_page": "Nykyinen sivu", "language": "Kieli", "subject": "Aihe", "sent": "Lähetetty",
           "department": "Osasto"},
    "en": {"title": "A copy of your personal data", "generated": "Generated", "conversations": "Chat conversations",
           "offline": "Messages left through the email form", "emails": "Emails sent to you",
           "flags": "Flags", "objection": "Objection to direct marketing", "restriction": "Restriction of processing",
           "yes": "yes", "no": "no", "none": "No data.", "started": "Started", "metadata": "Automatic data",
           "author": {"visitor": "You", "agent": "Agent", "system": "System"},
           "labels": "Labels", "note": "internal note",
           "replies": "Replies", "info": "About the processing (Article 15)",
           "name": "Name", "email": "Email", "message": "Message", "browser": "Browser", "os": "Operating system",
           "referrer": "Referrer", "page": "Page", "current_page": "Current page", "language": "Language", "subject": "Subject", "sent": "Sent",
           "department": "Department"},
    "sv": {"title": "En kopia av dina personuppgifter", "generated": "Skapad", "conversations": "Chattsamtal",
           "offline": "Meddelanden via e-postformuläret", "emails": "E-post som skickats till dig",
           "flags": "Markeringar", "objection": "Förbud mot direktmarknadsföring",
           "restriction": "Begränsning av behandling", "yes": "ja", "no": "nej", "none": "Inga uppgifter.",
           "started": "Inledd", "metadata": "Automatiska uppgifter",
           "author": {"visitor": "Du", "agent": "Kundtjänst", "system": "System"},
           "labels": "Etiketter", "note": "intern anteckning",
           "replies": "Svar", "info": "Om behandlingen (artikel 15)",
           "name": "Namn", "email": "E-post", "message": "Meddelande", "browser": "Webbläsare",
           "os": "Operativsystem", "referrer": "Hänvisande sida", "page": "Sida", "current_page": "Nuvarande sida", "language": "Språk",
           "subject": "Ämne", "sent": "Skickat", "department": "Avdelning"},
}

# attachments, ratings and emailed transcripts (issue 8)
LABELS["fi"].update(attachments="Liitteet", rating="Arvio", transcript_emails="Tallenne lähetetty osoitteeseen")
LABELS["en"].update(attachments="Attachments", rating="Rating", transcript_emails="Transcript emailed to")
LABELS["sv"].update(attachments="Bilagor", rating="Betyg", transcript_emails="Utskriften skickad till")
LABELS["fi"]["consent"] = "Suostumus markkinointiviesteihin (tekstin versio)"
LABELS["en"]["consent"] = "Consent to marketing email (wording version)"
LABELS["sv"]["consent"] = "Samtycke till marknadsföring per e-post (textens version)"

# a mail's true delivery state (mail/outbox.py DELIVERY_STATES; docs/mail.md); None: no mail row (any more)
LABELS["fi"].update(state="Tila", delivery={
    "queued": "jonossa, ei vielä lähetetty", "sending": "lähetetään", "sent": "lähetetty",
    "refused": "vastaanottava palvelin hylkäsi, ei toimitettu", "failed": "ei toimitettu",
    "uncertain": "toimitus epävarma", None: "ei lähetetty"})
LABELS["en"].update(state="State", delivery={
    "queued": "queued, not sent yet", "sending": "being sent", "sent": "sent",
    "refused": "refused by the receiving server, not delivered", "failed": "not delivered",
    "uncertain": "delivery uncertain", None: "not sent"})
LABELS["sv"].update(state="Status", delivery={
    "queued": "i kö, inte skickat ännu", "sending": "skickas", "sent": "skickat",
    "refused": "avvisat av den mottagande servern, inte levererat", "failed": "inte levererat",
    "uncertain": "leverans osäker", None: "inte skickat"})

# the pre-chat form (docs/prechat.md)
LABELS["fi"].update(prechat="Ennen keskustelua annetut tiedot", topic="Aihe")
LABELS["en"].update(prechat="Given before the chat", topic="Topic")
LABELS["sv"].update(prechat="Uppgifter givna före chatten", topic="Ämne")
# the person's replies by email (docs/mail.md "Replies by email")
LABELS["fi"]["email_replies"] = "Sähköpostivastauksesi"
LABELS["en"]["email_replies"] = "Your replies by email"
LABELS["sv"]["email_replies"] = "Dina svar per e-post"

CSS = Path(__file__).resolve().parent.parent / "web" / "static" / "privacy.css"


def render_html(copy: dict[str, Any], settings: Settings, lang: str) -> str:
    """A self-contained document: the copy is downloaded and opened from disk,
    so its stylesheet is inside it."""
    lang = lang if lang in LABELS else "en"
    return render("subject_copy.html", c=copy, L=LABELS[lang], n=notice(settings, lang), lang=lang,
                  local=lambda at: local_minutes(at, settings), zone=settings.time_zone,
                  css=Markup(CSS.read_text(encoding="utf-8")))  # our own file  # nosec B704
