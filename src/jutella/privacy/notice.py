"""The privacy notice at /privacy, generated from the ``[register]`` and
``[retention]`` settings so it can never disagree with what jutella does.

The text follows the seed register notice section by section and adds what the
GDPR asks today: the legal basis, retention periods, every right (access,
rectification, erasure, restriction, portability, objection) and the right to
complain to the Data Protection Ombudsman. Long legal prose is kept as whole
sentences per language here rather than as fragments in a PO catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jutella.settings import Settings

OMBUDSMAN = {
    "fi": "Tietosuojavaltuutetun toimisto, PL 800, 00531 Helsinki, tietosuoja.fi",
    "en": "Office of the Data Protection Ombudsman, P.O. Box 800, 00531 Helsinki, Finland, tietosuoja.fi",
    "sv": "Dataombudsmannens byrå, PB 800, 00531 Helsingfors, tietosuoja.fi",
}

TEXT: dict[str, dict[str, Any]] = {
    "fi": {
        "title": "Tietosuojaseloste",
        "subtitle": "Rekisteri- ja tietosuojaseloste (EU:n yleinen tietosuoja-asetus, 13 ja 14 artikla)",
        "s_controller": "1. Rekisterinpitäjä",
        "s_contact": "2. Rekisteriasioita hoitava henkilö",
        "s_name": "3. Rekisterin nimi",
        "s_purpose": "4. Henkilötietojen käsittelyn tarkoitus ja oikeusperuste",
        "legal_basis": "Oikeusperuste",
        "s_content": "5. Rekisterin tietosisältö",
        "auto_intro": "Sovellus kerää asiakkaasta automaattisesti seuraavat tiedot, joita ei käytetä asiakkaan "
                      "tunnistamiseen:",
        "auto": ["käytössä oleva verkkoselain (selainperhe ja pääversio)",
                 "käytössä oleva käyttöjärjestelmä (järjestelmä ja versio)",
                 "sivu, jolta asiakas on saapunut nykyiselle sivulle (viittaava sivu)",
                 "sivu, jolla chat avattiin, ja asiakkaan kieli"],
        "no_ip": "IP-osoitetta ei tallenneta. Selaimeen ei tallenneta mitään ennen kuin asiakas avaa chatin; "
                 "avaamisen jälkeen selain säilyttää satunnaisen tunnisteen, jotta keskustelu jatkuu sivun "
                 "uudelleenlatauksen jälkeen. Tunnisteen voi poistaa chatin \"Unohda tämä selain\" -toiminnolla.",
        "given": "Asiakaspalvelija voi pyytää asiakkaalta joitakin henkilötietoja asiakkaan ongelman "
                 "ratkaisemiseksi. Asiakas luovuttaa tiedot itse. Esimerkkejä: opiskelijanumero, "
                 "sähköpostiosoite, asiakkaan nimi.",
        "histories": "Palvelu tallentaa chat-keskustelujen historiat.",
        "form": "Jos asiakaspalvelija ei ole tavoitettavissa asiakkaan avatessa chatin, asiakkaalle tarjotaan "
                "sähköpostilomaketta. Lomakkeen käyttäminen edellyttää seuraavat tiedot: nimi, sähköpostiosoite.",
        "s_sources": "6. Säännönmukaiset tietolähteet",
        "sources": ["Automaattisesti kerättävät tiedot (kohta 5) sovellus kerää itse.",
                    "Asiakaspalvelija voi pyytää asiakkaalta henkilötietoja chatissa, kun se on tarpeen asiakkaan "
                    "auttamiseksi; luovuttamalla tiedot asiakas hyväksyy niiden tallentumisen "
                    "keskusteluhistoriaan.",
                    "Sähköpostilomakkeella kerätyt henkilötiedot tallennetaan, jotta asiakkaan viestiin voidaan "
                    "vastata."],
        "s_transfer": "7. Tietojen luovutukset ja siirrot",
        "transfer": "Tietoja ei luovuteta rekisterinpitäjän ulkopuolelle, eikä niitä siirretä Euroopan unionin "
                    "tai Euroopan talousalueen ulkopuolelle. Kaikki tiedot säilytetään rekisterinpitäjän omalla "
                    "palvelimella; palvelu ei käytä ulkopuolisia palveluja.",
        "s_protection": "8. Rekisterin suojauksen periaatteet",
        "protection": "Sähköisesti käsiteltävät tiedot on suojattu palomuurein, salasanoin ja muilla "
                      "tietoturva-alalla kulloinkin yleisesti hyväksytyillä teknisillä keinoilla. Pääsy rekisteriin "
                      "on vain rekisterinpitäjän henkilökunnalla, hallituksen puheenjohtajistolla ja chat-"
                      "järjestelmän ylläpitäjällä, kullakin rekisterinpitäjän myöntämällä henkilökohtaisella "
                      "käyttöoikeudella. Jokainen henkilötietojen katselu kirjataan lokiin.",
        "s_retention": "9. Säilytysajat",
        "retention": {"chat": "Chat-keskustelut: {days} päivää viimeisestä viestistä.",
                      "offline": "Sähköpostilomakkeen viestit ja niihin lähetetyt vastaukset: {days} päivää.",
                      "metadata": "Automaattisesti kerätyt tiedot (selain, käyttöjärjestelmä, viittaava sivu, "
                                  "sivu, kieli): {days} päivää.",
                      "audit": "Käyttöloki (kuka katsoi tai muutti mitäkin): {days} päivää."},
        "retention_after": "Säilytysajan päätyttyä tiedot poistetaan automaattisesti.",
        "s_rights": "10. Rekisteröidyn oikeudet",
        "rights": [("Tarkastusoikeus", "Rekisteröidyllä on oikeus tarkistaa, mitä häntä koskevia tietoja "
                    "rekisteriin on tallennettu, ja saada niistä jäljennös."),
                   ("Oikeus tietojen oikaisemiseen", "Rekisteröidyllä on oikeus vaatia virheellisen tiedon "
                    "korjaamista."),
                   ("Oikeus tietojen poistamiseen", "Rekisteröidyllä on oikeus pyytää tietojensa poistamista."),
                   ("Oikeus käsittelyn rajoittamiseen", "Rekisteröidyllä on oikeus pyytää tietojensa käsittelyn "
                    "rajoittamista esimerkiksi oikaisupyynnön selvittämisen ajaksi."),
                   ("Oikeus siirtää tiedot järjestelmästä toiseen", "Rekisteröidyllä on oikeus saada antamansa "
                    "tiedot koneluettavassa muodossa (JSON)."),
                   ("Vastustamisoikeus", "Rekisteröidyllä on oikeus kieltää tietojensa käsittely ja "
                    "luovuttaminen suoramainontaa, etämyyntiä, muuta suoramarkkinointia sekä markkina- ja "
                    "mielipidetutkimusta varten.")],
        "how": "Pyynnöt osoitetaan rekisteriasioita hoitavalle henkilölle (kohta 2) kirjallisesti ja "
               "allekirjoitettuna tai henkilökohtaisesti rekisterinpitäjän toimistolla. Pyyntöön vastataan "
               "kuukauden kuluessa.",
        "complaint": "Rekisteröidyllä on oikeus tehdä valitus valvontaviranomaiselle, jos hän katsoo, että "
                     "häntä koskevien henkilötietojen käsittelyssä rikotaan tietosuoja-asetusta:",
        "address": "Osoite", "phone": "Puhelin", "email": "Sähköposti",
    },
    "en": {
        "title": "Privacy notice",
        "subtitle": "Register and privacy notice (EU General Data Protection Regulation, Articles 13 and 14)",
        "s_controller": "1. Controller",
        "s_contact": "2. Person handling register matters",
        "s_name": "3. Name of the register",
        "s_purpose": "4. Purpose and legal basis of processing",
        "legal_basis": "Legal basis",
        "s_content": "5. Data content",
        "auto_intro": "The application collects the following automatically from the customer; they are not "
                      "used to identify the customer:",
        "auto": ["the web browser in use (browser family and major version)",
                 "the operating system in use (system and version)",
                 "the page from which the customer arrived at the current page (referrer)",
                 "the page on which the chat was opened, and the customer's language"],
        "no_ip": "No IP address is stored. Nothing is written to the browser before the customer opens the chat; "
                 "after opening it, the browser keeps a random identifier so the conversation continues after a "
                 "page reload. The chat's \"Forget this browser\" removes it.",
        "given": "Customer-service agents may ask the customer for some personal data to solve the customer's "
                 "problem. The customer then hands the data over themselves. Examples: student number, email "
                 "address, the customer's name.",
        "histories": "The service stores chat histories.",
        "form": "If no agent is available when the customer opens the chat, the customer is offered an email "
                "form. To use it, the form requires: name, email address.",
        "s_sources": "6. Regular sources of data",
        "sources": ["The application collects the automatically collected data (section 5) itself.",
                    "An agent may ask the customer for personal data in the chat when it is needed to help; by "
                    "handing it over, the customer accepts that it is stored in the chat history.",
                    "Personal data collected through the email form is stored so that the customer's message can "
                    "be answered."],
        "s_transfer": "7. Disclosure and transfer",
        "transfer": "Data is not disclosed outside the controller and is not transferred outside the European "
                    "Union or the European Economic Area. All data is kept on the controller's own server; the "
                    "service uses no outside services.",
        "s_protection": "8. Protection of the register",
        "protection": "Electronically processed data is protected by firewalls, passwords and the technical means "
                      "generally accepted in the security field at the time. Only the controller's staff, the "
                      "board's chairpersons and the administrator of the chat system have access to the register, "
                      "each with an individual access right granted by the controller. Every look at personal "
                      "data is written to a log.",
        "s_retention": "9. Retention periods",
        "retention": {"chat": "Chat conversations: {days} days after the last message.",
                      "offline": "Messages left through the email form and the replies sent to them: {days} days.",
                      "metadata": "Automatically collected data (browser, operating system, referrer, page, "
                                  "language): {days} days.",
                      "audit": "The access log (who looked at or changed what): {days} days."},
        "retention_after": "When a retention period ends, the data is deleted automatically.",
        "s_rights": "10. Rights of the data subject",
        "rights": [("Right of access", "The data subject has the right to check what data about them is stored "
                    "in the register and to receive a copy of it."),
                   ("Right to rectification", "The data subject has the right to demand that wrong data be "
                    "corrected."),
                   ("Right to erasure", "The data subject has the right to ask for their data to be erased."),
                   ("Right to restriction of processing", "The data subject has the right to ask that the "
                    "processing of their data be restricted, for example while a correction is being checked."),
                   ("Right to data portability", "The data subject has the right to receive the data they "
                    "provided in a machine-readable format (JSON)."),
                   ("Right to object", "The data subject has the right to forbid processing and disclosure of "
                    "their data for direct advertising, distance selling, other direct marketing, and market and "
                    "opinion research.")],
        "how": "Requests are sent to the person handling register matters (section 2), written and signed, or "
               "made in person at the controller's office. Requests are answered within one month.",
        "complaint": "The data subject has the right to lodge a complaint with the supervisory authority if they "
                     "consider that the processing of their personal data infringes the GDPR:",
        "address": "Address", "phone": "Phone", "email": "Email",
    },
    "sv": {
        "title": "Dataskyddsbeskrivning",
        "subtitle": "Register- och dataskyddsbeskrivning (EU:s allmänna dataskyddsförordning, artiklarna 13 och 14)",
        "s_controller": "1. Personuppgiftsansvarig",
        "s_contact": "2. Kontaktperson i registerärenden",
        "s_name": "3. Registrets namn",
        "s_purpose": "4. Ändamål och rättslig grund för behandlingen",
        "legal_basis": "Rättslig grund",
        "s_content": "5. Registrets innehåll",
        "auto_intro": "Applikationen samlar automatiskt in följande uppgifter om kunden; de används inte för att "
                      "identifiera kunden:",
        "auto": ["webbläsaren som används (familj och huvudversion)",
                 "operativsystemet som används (system och version)",
                 "sidan från vilken kunden kom till den aktuella sidan (hänvisande sida)",
                 "sidan där chatten öppnades, och kundens språk"],
        "no_ip": "Ingen IP-adress sparas. Ingenting sparas i webbläsaren innan kunden öppnar chatten; därefter "
                 "sparar webbläsaren en slumpmässig identifierare så att samtalet fortsätter efter att sidan "
                 "laddats om. Chattens funktion \"Glöm den här webbläsaren\" tar bort den.",
        "given": "Kundtjänstpersonalen kan be kunden om vissa personuppgifter för att lösa kundens problem. Kunden "
                 "lämnar då själv uppgifterna. Exempel: studentnummer, e-postadress, kundens namn.",
        "histories": "Tjänsten sparar chatthistoriken.",
        "form": "Om ingen kundtjänstmedarbetare är tillgänglig när kunden öppnar chatten erbjuds kunden ett "
                "e-postformulär. Formuläret kräver: namn, e-postadress.",
        "s_sources": "6. Regelbundna uppgiftskällor",
        "sources": ["De automatiskt insamlade uppgifterna (punkt 5) samlar applikationen in själv.",
                    "En kundtjänstmedarbetare kan be kunden om personuppgifter i chatten när det behövs för att "
                    "hjälpa; genom att lämna dem godkänner kunden att de sparas i chatthistoriken.",
                    "Personuppgifter som samlas in via e-postformuläret sparas för att kundens meddelande ska "
                    "kunna besvaras."],
        "s_transfer": "7. Utlämnande och överföring av uppgifter",
        "transfer": "Uppgifter lämnas inte ut utanför den personuppgiftsansvarige och överförs inte utanför "
                    "Europeiska unionen eller Europeiska ekonomiska samarbetsområdet. Alla uppgifter sparas på den "
                    "personuppgiftsansvariges egen server; tjänsten använder inga utomstående tjänster.",
        "s_protection": "8. Principer för skyddet av registret",
        "protection": "Elektroniskt behandlade uppgifter skyddas med brandväggar, lösenord och andra tekniska medel "
                      "som vid varje tidpunkt är allmänt vedertagna inom informationssäkerhet. Endast den "
                      "personuppgiftsansvariges personal, styrelsens ordförande och chattsystemets administratör har "
                      "tillgång till registret, var och en med en personlig åtkomsträtt. Varje visning av "
                      "personuppgifter loggförs.",
        "s_retention": "9. Lagringstider",
        "retention": {"chat": "Chattsamtal: {days} dagar efter det senaste meddelandet.",
                      "offline": "Meddelanden via e-postformuläret och svaren på dem: {days} dagar.",
                      "metadata": "Automatiskt insamlade uppgifter (webbläsare, operativsystem, hänvisande sida, "
                                  "sida, språk): {days} dagar.",
                      "audit": "Åtkomstloggen (vem som såg eller ändrade vad): {days} dagar."},
        "retention_after": "När lagringstiden har gått ut raderas uppgifterna automatiskt.",
        "s_rights": "10. Den registrerades rättigheter",
        "rights": [("Rätt till insyn", "Den registrerade har rätt att kontrollera vilka uppgifter om hen som "
                    "sparats i registret och att få en kopia av dem."),
                   ("Rätt till rättelse", "Den registrerade har rätt att kräva att felaktiga uppgifter rättas."),
                   ("Rätt till radering", "Den registrerade har rätt att begära att uppgifterna raderas."),
                   ("Rätt till begränsning av behandling", "Den registrerade har rätt att begära att behandlingen "
                    "begränsas, till exempel medan en rättelse utreds."),
                   ("Rätt till dataportabilitet", "Den registrerade har rätt att få de uppgifter hen lämnat i "
                    "maskinläsbar form (JSON)."),
                   ("Rätt att invända", "Den registrerade har rätt att förbjuda behandling och utlämnande av sina "
                    "uppgifter för direktreklam, distansförsäljning, annan direktmarknadsföring samt marknads- och "
                    "opinionsundersökningar.")],
        "how": "Begäran riktas till kontaktpersonen i registerärenden (punkt 2) skriftligen och undertecknad, "
               "eller personligen på den personuppgiftsansvariges kontor. Begäran besvaras inom en månad.",
        "complaint": "Den registrerade har rätt att lämna in klagomål till tillsynsmyndigheten om hen anser att "
                     "behandlingen av hens personuppgifter strider mot dataskyddsförordningen:",
        "address": "Adress", "phone": "Telefon", "email": "E-post",
    },
}


@dataclass
class Notice:
    lang: str
    text: dict[str, Any]
    settings: Settings

    @property
    def register(self):
        return self.settings.notice

    def pick(self, field: str) -> str:
        return getattr(self.register, f"{field}_{self.lang}", None) or getattr(self.register, f"{field}_en")

    @property
    def retention_lines(self) -> list[str]:
        r = self.settings.retention
        days = {"chat": r.chat_days, "offline": r.offline_days, "metadata": r.metadata_days, "audit": r.audit_days}
        return [self.text["retention"][k].format(days=v) for k, v in days.items()]

    @property
    def ombudsman(self) -> str:
        return OMBUDSMAN[self.lang]


def notice(settings: Settings, lang: str) -> Notice:
    lang = lang if lang in TEXT else "en"
    return Notice(lang, TEXT[lang], settings)


def record_of_processing(settings: Settings) -> dict[str, Any]:
    """The record of processing activities (GDPR Article 30) from the same settings."""
    r, reg = settings.retention, settings.notice
    return {
        "controller": reg.controller.model_dump(),
        "contact": reg.contact.model_dump(),
        "register": reg.name_en,
        "purposes": [reg.purpose_en],
        "legal_basis": reg.legal_basis_en,
        "categories_of_data_subjects": ["visitors of the organisation's website who use the chat or its email form"],
        "categories_of_personal_data": [
            "browser family and major version, operating system and version, referrer, page, language "
            "(collected automatically)",
            "chat messages, which may contain what the visitor hands over (e.g. name, email, student number)",
            "name, email address and message from the email form, and the replies sent",
            "a random visitor identifier kept in the visitor's browser after they open the chat",
        ],
        "recipients": ["the controller's own staff with individual accounts; no other recipients"],
        "transfers_outside_eea": "none" if not reg.transfers_outside_eea else "see the notice",
        "retention_days": {"chat": r.chat_days, "offline_messages": r.offline_days, "metadata": r.metadata_days,
                           "audit_log": r.audit_days},
        "security_measures": [
            "individual staff accounts with roles; argon2id passwords; optional or required two-factor sign-in",
            "server-side sessions with idle and absolute timeouts; CSRF protection; strict Content-Security-Policy",
            "a hash-chained audit log of every view of personal data",
            "no IP addresses stored; data kept on the controller's own server only",
        ],
    }
