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
from collections.abc import Sequence
from typing import Any

from jutella.i18n import gettext
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
                 "sivu, jolla chat avattiin, ja asiakkaan kieli",
                 "chatin ollessa auki sivu, jolla asiakas on nyt (vain viimeisin, osoite ilman kyselyosaa), "
                 "jotta asiakaspalvelija näkee, mitä sivua asiakas katsoo"],
        "no_ip": "IP-osoitetta ei tallenneta. Selaimeen ei tallenneta mitään ennen kuin asiakas avaa chatin; "
                 "avaamisen jälkeen selain säilyttää satunnaisen tunnisteen, jotta keskustelu jatkuu sivun "
                 "uudelleenlatauksen jälkeen. Tunnisteen voi poistaa chatin \"Unohda tämä selain\" -toiminnolla.",
        "given": "Asiakaspalvelija voi pyytää asiakkaalta joitakin henkilötietoja asiakkaan ongelman "
                 "ratkaisemiseksi. Asiakas luovuttaa tiedot itse. Esimerkkejä: opiskelijanumero, "
                 "sähköpostiosoite, asiakkaan nimi.",
        "histories": "Palvelu tallentaa chat-keskustelujen historiat.",
        "stored_intro": "Palvelu tallentaa:",
        "stored": ["chat-keskustelujen viestit sekä henkilökunnan keskusteluun lisäämät sisäiset muistiinpanot ja "
                   "tunnisteet",
                   "asiakkaan chattiin liittämät tiedostot (kuvat ja PDF-tiedostot)",
                   "asiakkaan keskustelulle antama arvio ja sen kommentti",
                   "sähköpostiosoite, johon asiakas pyysi lähettämään keskustelun tekstin",
                   "sähköpostilomakkeen nimi, sähköpostiosoite ja viesti sekä niihin lähetetyt vastaukset",
                   "käyttöloki: kuka henkilökunnasta katsoi tai muutti mitäkin ja milloin",
                   "henkilökunnan käyttäjätilit: nimi, sähköpostiosoite, roolit ja kirjautumisasetukset"],
        "stored_marketing": "sähköpostilomakkeella annettu suostumus markkinointiviesteihin: suostumustekstin versio "
                            "ja ajankohta",
        "returning_on": "Kun sama selain palaa (satunnainen tunniste on yhä tallessa), asiakaspalvelija näkee uuden "
                        "keskustelun rinnalla saman selaimen aiemmat keskustelut.",
        "returning_off": "Asiakaspalvelija ei näe palaavan selaimen aiempia keskusteluja; tunniste pitää vain yhden "
                         "keskustelun käynnissä sivulta toiselle.",
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
                    "tai Euroopan talousalueen ulkopuolelle.",
        "no_processors": "Kaikki tiedot säilytetään rekisterinpitäjän omalla palvelimella; palvelu ei käytä "
                         "ulkopuolisia palveluja.",
        "processors_intro": "Seuraavat käsittelevät tietoja rekisterinpitäjän lukuun (henkilötietojen käsittelijät):",
        "processor_kind": {"hosting": "palvelimen ja tietokannan ylläpito",
                           "mail": "sähköpostin välitys (vastaukset ja keskustelujen tekstit)", "other": ""},
        "hooks_intro": "Seuraaviin järjestelmiin välitetään automaattisesti (webhook) kunkin kohdalla mainitut "
                       "tiedot uusista keskusteluista, sähköpostilomakkeen viesteistä ja arvioista:",
        "hook_fields": {"name": "nimi", "email": "sähköpostiosoite", "text": "viestin teksti"},
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
                      "audit": "Käyttöloki (kuka katsoi tai muutti mitäkin): {days} päivää.",
                      "conversation_parts": "Keskustelun muistiinpanot, tunnisteet, liitetiedostot, arvio ja sen "
                                            "kommentti sekä osoitteet, joihin sen teksti lähetettiin: "
                                            "keskustelun mukana ({days} päivää).",
                      "staff": "Henkilökunnan käyttäjätilit: niin kauan kuin henkilöllä on käyttöoikeus; suljettu "
                               "tili säilytetään, jotta käyttöloki voi nimetä, kuka teki mitäkin.",
                      "backups": "Varmuuskopiot: {days} päivää, minkä jälkeen ne poistetaan."},
        "retention_after": "Säilytysajan päätyttyä tiedot poistetaan automaattisesti.",
        "restricted": "Jos henkilön tietojen käsittelyä on rajoitettu (esimerkiksi oikeusvaateen vuoksi), hänen "
                      "tietonsa säilytetään säilytysajan jälkeenkin, vain rekisteriasioita hoitavan henkilön "
                      "nähtävillä, kunnes rajoitus poistetaan; sen jälkeen ne poistetaan seuraavassa "
                      "päivittäisessä ajossa.",
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
                   ("Vastustamisoikeus", "Koska käsittely perustuu rekisterinpitäjän oikeutettuun etuun, "
                    "rekisteröidyllä on oikeus henkilökohtaiseen erityiseen tilanteeseensa liittyvällä perusteella "
                    "vastustaa tietojensa käsittelyä (21 artiklan 1 kohta). Rekisterinpitäjä ei tällöin enää käsittele "
                    "tietoja, ellei se osoita käsittelyyn huomattavan tärkeää perustetta tai tarvitse tietoja "
                    "oikeusvaateen vuoksi."),
                   ("Oikeus kieltää suoramarkkinointi", "Rekisteröidyllä on oikeus kieltää tietojensa käsittely ja "
                    "luovuttaminen suoramainontaa, etämyyntiä, muuta suoramarkkinointia sekä markkina- ja "
                    "mielipidetutkimusta varten.")],
        "object_how": "Vastustamisen tai kiellon voi tehdä kirjoittamalla rekisteriasioita hoitavalle henkilölle "
                      "(kohta 2){email}; siinä riittää kertoa, mitä käsittelyä vastustaa, ja yhteystieto, jolla "
                      "tiedot löytyvät (esimerkiksi sähköpostiosoite).",
        "object_email": " osoitteeseen {email}",
        "withdraw": ("Suostumuksen peruuttaminen", "Suostumuksen markkinointiviesteihin voi peruuttaa milloin "
                     "tahansa ottamalla yhteyttä rekisterinpitäjään; peruuttaminen ei vaikuta aiemman käsittelyn "
                     "lainmukaisuuteen."),
        "how": "Pyynnöt osoitetaan rekisteriasioita hoitavalle henkilölle (kohta 2) kirjallisesti ja "
               "allekirjoitettuna tai henkilökohtaisesti rekisterinpitäjän toimistolla. Pyyntöön vastataan "
               "kuukauden kuluessa.",
        "complaint": "Rekisteröidyllä on oikeus tehdä valitus valvontaviranomaiselle, jos hän katsoo, että "
                     "häntä koskevien henkilötietojen käsittelyssä rikotaan tietosuoja-asetusta:",
        "s_automated": "11. Automaattinen päätöksenteko",
        "automated": "Tietoja ei käytetä automaattiseen päätöksentekoon eikä profilointiin (22 artikla).",
        "dpo": "Tietosuojavastaava",
        "marketing": "Markkinointi suostumuksella",
        "consent_basis": "Oikeusperuste: rekisteröidyn suostumus (6 artiklan 1 kohdan a alakohta). Suostumus on "
                         "vapaaehtoinen; se annetaan rastittamalla sähköpostilomakkeen ruutu, ja sen voi peruuttaa "
                         "milloin tahansa.",
        "version": "Versio {version}, päivitetty {date}.",
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
                 "the page on which the chat was opened, and the customer's language",
                 "while the chat is open, the page the customer is on now (only the latest, the address "
                 "without its query string), so the agent sees which page the customer is looking at"],
        "no_ip": "No IP address is stored. Nothing is written to the browser before the customer opens the chat; "
                 "after opening it, the browser keeps a random identifier so the conversation continues after a "
                 "page reload. The chat's \"Forget this browser\" removes it.",
        "given": "Customer-service agents may ask the customer for some personal data to solve the customer's "
                 "problem. The customer then hands the data over themselves. Examples: student number, email "
                 "address, the customer's name.",
        "histories": "The service stores chat histories.",
        "stored_intro": "The service stores:",
        "stored": ["the messages of chat conversations, and the internal notes and labels that staff add to a "
                   "conversation",
                   "files the customer attaches to the chat (images and PDF files)",
                   "the rating the customer gives a conversation and its comment",
                   "the email address to which the customer asked the conversation's transcript to be sent",
                   "the email form's name, email address and message, and the replies sent to them",
                   "an access log: who of the staff looked at or changed what, and when",
                   "staff accounts: name, email address, roles and sign-in settings"],
        "stored_marketing": "consent to marketing email given on the email form: the version of the consent "
                            "wording and the time",
        "returning_on": "When the same browser returns (the random identifier is still kept), agents see that "
                        "browser's earlier chats beside the new one.",
        "returning_off": "Agents do not see a returning browser's earlier chats; the identifier only keeps one "
                         "conversation going from page to page.",
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
                    "Union or the European Economic Area.",
        "no_processors": "All data is kept on the controller's own server; the service uses no outside services.",
        "processors_intro": "The following process data on the controller's behalf (processors):",
        "processor_kind": {"hosting": "hosting of the server and its database",
                           "mail": "email delivery (replies and conversation transcripts)", "other": ""},
        "hooks_intro": "The following systems automatically receive (webhooks) the data named for each about new "
                       "chats, messages from the email form and ratings:",
        "hook_fields": {"name": "name", "email": "email address", "text": "message text"},
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
                      "audit": "The access log (who looked at or changed what): {days} days.",
                      "conversation_parts": "A conversation's notes, labels, attached files, rating and its "
                                            "comment, and the addresses its transcript was sent to: with the "
                                            "conversation ({days} days).",
                      "staff": "Staff accounts: while the person has access; a disabled account is kept so that the "
                               "access log can name who did what.",
                      "backups": "Backups: {days} days, after which they are deleted."},
        "retention_after": "When a retention period ends, the data is deleted automatically.",
        "restricted": "If the processing of a person's data is restricted (for example for a legal claim), their "
                      "data is kept past these periods, visible only to the person handling register matters, "
                      "until the restriction is lifted; then it is deleted at the next daily run.",
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
                   ("Right to object", "As the processing is based on the controller's legitimate interest, the "
                    "data subject has the right to object, on grounds relating to their particular situation, to "
                    "the processing of their data (Article 21(1)). The controller then no longer processes it "
                    "unless it demonstrates compelling legitimate grounds for the processing or needs the data for "
                    "a legal claim."),
                   ("Right to object to direct marketing", "The data subject has the right to forbid processing "
                    "and disclosure of their data for direct advertising, distance selling, other direct "
                    "marketing, and market and opinion research.")],
        "object_how": "An objection is made by writing to the person handling register matters (section 2){email}; "
                      "it is enough to say which processing you object to and a detail by which your data can be "
                      "found (such as your email address).",
        "object_email": " at {email}",
        "withdraw": ("Withdrawing consent", "Consent to marketing email can be withdrawn at any time by contacting "
                     "the controller; withdrawal does not affect the lawfulness of processing before it."),
        "how": "Requests are sent to the person handling register matters (section 2), written and signed, or "
               "made in person at the controller's office. Requests are answered within one month.",
        "complaint": "The data subject has the right to lodge a complaint with the supervisory authority if they "
                     "consider that the processing of their personal data infringes the GDPR:",
        "s_automated": "11. Automated decision-making",
        "automated": "No automated decision-making, including profiling (Article 22), is done with the data.",
        "dpo": "Data protection officer",
        "marketing": "Marketing with consent",
        "consent_basis": "Legal basis: the data subject's consent (GDPR Article 6(1)(a)). Consent is voluntary; it "
                         "is given by ticking a box on the email form and can be withdrawn at any time.",
        "version": "Version {version}, updated {date}.",
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
                 "sidan där chatten öppnades, och kundens språk",
                 "medan chatten är öppen, sidan kunden är på nu (bara den senaste, adressen utan frågedel), "
                 "så att kundtjänsten ser vilken sida kunden tittar på"],
        "no_ip": "Ingen IP-adress sparas. Ingenting sparas i webbläsaren innan kunden öppnar chatten; därefter "
                 "sparar webbläsaren en slumpmässig identifierare så att samtalet fortsätter efter att sidan "
                 "laddats om. Chattens funktion \"Glöm den här webbläsaren\" tar bort den.",
        "given": "Kundtjänstpersonalen kan be kunden om vissa personuppgifter för att lösa kundens problem. Kunden "
                 "lämnar då själv uppgifterna. Exempel: studentnummer, e-postadress, kundens namn.",
        "histories": "Tjänsten sparar chatthistoriken.",
        "stored_intro": "Tjänsten sparar:",
        "stored": ["chattsamtalens meddelanden samt interna anteckningar och etiketter som personalen lägger till "
                   "ett samtal",
                   "filer som kunden bifogar i chatten (bilder och PDF-filer)",
                   "kundens betyg på ett samtal och dess kommentar",
                   "e-postadressen till vilken kunden bad att få samtalets utskrift skickad",
                   "e-postformulärets namn, e-postadress och meddelande samt svaren på dem",
                   "en åtkomstlogg: vem i personalen som såg eller ändrade vad och när",
                   "personalens användarkonton: namn, e-postadress, roller och inloggningsinställningar"],
        "stored_marketing": "samtycke till marknadsföring per e-post som getts i e-postformuläret: versionen av "
                            "samtyckestexten och tidpunkten",
        "returning_on": "När samma webbläsare kommer tillbaka (den slumpmässiga identifieraren finns kvar) ser "
                        "kundtjänsten webbläsarens tidigare samtal bredvid det nya.",
        "returning_off": "Kundtjänsten ser inte en återkommande webbläsares tidigare samtal; identifieraren håller "
                         "bara ett samtal igång från sida till sida.",
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
                    "Europeiska unionen eller Europeiska ekonomiska samarbetsområdet.",
        "no_processors": "Alla uppgifter sparas på den personuppgiftsansvariges egen server; tjänsten använder inga "
                         "utomstående tjänster.",
        "processors_intro": "Följande behandlar uppgifter för den personuppgiftsansvariges räkning "
                            "(personuppgiftsbiträden):",
        "processor_kind": {"hosting": "drift av servern och databasen",
                           "mail": "förmedling av e-post (svar och samtalsutskrifter)", "other": ""},
        "hooks_intro": "Följande system får automatiskt (webhooks) de uppgifter som nämns för vart och ett om nya "
                       "chattar, meddelanden från e-postformuläret och betyg:",
        "hook_fields": {"name": "namn", "email": "e-postadress", "text": "meddelandets text"},
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
                      "audit": "Åtkomstloggen (vem som såg eller ändrade vad): {days} dagar.",
                      "conversation_parts": "Ett samtals anteckningar, etiketter, bifogade filer, betyg och dess "
                                            "kommentar samt adresserna dit dess utskrift skickades: med samtalet "
                                            "({days} dagar).",
                      "staff": "Personalens användarkonton: så länge personen har åtkomst; ett stängt konto sparas "
                               "så att åtkomstloggen kan namnge vem som gjorde vad.",
                      "backups": "Säkerhetskopior: {days} dagar, därefter raderas de."},
        "retention_after": "När lagringstiden har gått ut raderas uppgifterna automatiskt.",
        "restricted": "Om behandlingen av en persons uppgifter har begränsats (till exempel för ett rättsligt "
                      "anspråk) sparas uppgifterna även efter dessa tider, synliga endast för kontaktpersonen i "
                      "registerärenden, tills begränsningen hävs; därefter raderas de vid nästa dagliga körning.",
        "s_rights": "10. Den registrerades rättigheter",
        "rights": [("Rätt till insyn", "Den registrerade har rätt att kontrollera vilka uppgifter om hen som "
                    "sparats i registret och att få en kopia av dem."),
                   ("Rätt till rättelse", "Den registrerade har rätt att kräva att felaktiga uppgifter rättas."),
                   ("Rätt till radering", "Den registrerade har rätt att begära att uppgifterna raderas."),
                   ("Rätt till begränsning av behandling", "Den registrerade har rätt att begära att behandlingen "
                    "begränsas, till exempel medan en rättelse utreds."),
                   ("Rätt till dataportabilitet", "Den registrerade har rätt att få de uppgifter hen lämnat i "
                    "maskinläsbar form (JSON)."),
                   ("Rätt att invända", "Eftersom behandlingen grundar sig på den personuppgiftsansvariges "
                    "berättigade intresse har den registrerade rätt att, av skäl som hänför sig till hens "
                    "specifika situation, invända mot behandlingen av sina uppgifter (artikel 21.1). Den "
                    "personuppgiftsansvarige behandlar då inte längre uppgifterna, om den inte kan påvisa "
                    "tvingande berättigade skäl eller behöver uppgifterna för ett rättsligt anspråk."),
                   ("Rätt att förbjuda direktmarknadsföring", "Den registrerade har rätt att förbjuda behandling "
                    "och utlämnande av sina uppgifter för direktreklam, distansförsäljning, annan "
                    "direktmarknadsföring samt marknads- och opinionsundersökningar.")],
        "object_how": "En invändning görs genom att skriva till kontaktpersonen i registerärenden (punkt 2){email}; "
                      "det räcker att ange vilken behandling man invänder mot och en uppgift genom vilken ens "
                      "uppgifter kan hittas (till exempel e-postadressen).",
        "object_email": " på {email}",
        "withdraw": ("Återkallande av samtycke", "Samtycket till marknadsföring per e-post kan återkallas när som "
                     "helst genom att kontakta den personuppgiftsansvarige; återkallandet påverkar inte "
                     "lagligheten av behandlingen innan dess."),
        "how": "Begäran riktas till kontaktpersonen i registerärenden (punkt 2) skriftligen och undertecknad, "
               "eller personligen på den personuppgiftsansvariges kontor. Begäran besvaras inom en månad.",
        "complaint": "Den registrerade har rätt att lämna in klagomål till tillsynsmyndigheten om hen anser att "
                     "behandlingen av hens personuppgifter strider mot dataskyddsförordningen:",
        "s_automated": "11. Automatiserat beslutsfattande",
        "automated": "Uppgifterna används inte för automatiserat beslutsfattande eller profilering (artikel 22).",
        "dpo": "Dataskyddsombud",
        "marketing": "Marknadsföring med samtycke",
        "consent_basis": "Rättslig grund: den registrerades samtycke (artikel 6.1 a i dataskyddsförordningen). "
                         "Samtycket är frivilligt; det ges genom att kryssa i en ruta i e-postformuläret och kan "
                         "återkallas när som helst.",
        "version": "Version {version}, uppdaterad {date}.",
        "address": "Adress", "phone": "Telefon", "email": "E-post",
    },
}


# The pre-chat form's fields (chat/prechat.py ``fields_in_use``): the notice lists those some site asks.
PRECHAT = {
    "fi": ("ennen chatin alkua lomakkeella annetut tiedot: {fields}",
           {"name": "nimi", "email": "sähköpostiosoite", "topic": "keskustelun aihe"}),
    "en": ("what the customer gives on the form shown before the chat starts: {fields}",
           {"name": "name", "email": "email address", "topic": "the topic of the conversation"}),
    "sv": ("uppgifter som kunden ger i formuläret före chatten: {fields}",
           {"name": "namn", "email": "e-postadress", "topic": "samtalets ämne"}),
}
PRECHAT_ORDER = ("name", "email", "topic")


def prechat_line(lang: str, asked: frozenset[str] | set[str]) -> str | None:
    """The pre-chat form's fields some site asks for now, in words; None when none."""
    if not asked:
        return None
    text, words = PRECHAT[lang if lang in PRECHAT else "en"]
    return text.format(fields=", ".join(words[f] for f in PRECHAT_ORDER if f in asked))


@dataclass
class Notice:
    lang: str
    text: dict[str, Any]
    settings: Settings
    asked: frozenset[str] = frozenset()  # the pre-chat form's fields in use (chat/prechat.py fields_in_use)
    # the webhooks that carry personal fields (mail/webhooks.py recipients): name, host, fields
    hooks: Sequence[dict[str, Any]] = ()

    @property
    def register(self):
        return self.settings.notice

    def pick(self, field: str, source: Any = None) -> str:
        source = source or self.register
        return getattr(source, f"{field}_{self.lang}", None) or getattr(source, f"{field}_en")

    @property
    def marketing(self):
        """The consent-based marketing contacts, or None when off (the notice then says nothing of them)."""
        m = self.register.marketing
        return m if m.enabled else None

    @property
    def stored(self) -> list[str]:
        extra = [self.text["stored_marketing"]] if self.marketing else []
        prechat = prechat_line(self.lang, self.asked)
        return [*self.text["stored"], *([prechat] if prechat else []), *extra]

    @property
    def returning(self) -> str:
        return self.text["returning_on" if self.settings.returning_visitor_history else "returning_off"]

    @property
    def processors(self) -> list[str]:
        """One line per processor: name (location): what they do."""
        out = []
        for p in self.register.processors:
            what = ", ".join(x for x in (self.text["processor_kind"][p.kind], p.service) if x)
            out.append(p.name + (f" ({p.location})" if p.location else "") + (f": {what}" if what else ""))
        return out

    @property
    def hook_lines(self) -> list[str]:
        """One line per webhook that carries personal fields: name (host): the fields."""
        words = self.text["hook_fields"]
        return [f"{h['name']} ({h['host']}): " + ", ".join(words[f] for f in h["personal"] if f in words)
                for h in self.hooks]

    @property
    def retention_lines(self) -> list[str]:
        r = self.settings.retention
        days = {"chat": r.chat_days, "conversation_parts": r.chat_days, "offline": r.offline_days,
                "metadata": r.metadata_days, "audit": r.audit_days, "staff": None, "backups": r.backups_days}
        return [self.text["retention"][k].format(days=v) for k, v in days.items()]

    @property
    def rights(self) -> list[tuple[str, str]]:
        return [*self.text["rights"], *([self.text["withdraw"]] if self.marketing else [])]

    @property
    def object_how(self) -> str:
        email = self.register.contact.email
        return self.text["object_how"].format(email=self.text["object_email"].format(email=email) if email else "")

    @property
    def version(self) -> str:
        return self.text["version"].format(version=self.register.version, date=self.register.updated.isoformat())

    @property
    def ombudsman(self) -> str:
        return OMBUDSMAN[self.lang]


def notice(settings: Settings, lang: str, asked: frozenset[str] = frozenset(),
           hooks: Sequence[dict[str, Any]] = ()) -> Notice:
    """``asked``: the pre-chat form's fields some site asks for (chat/prechat.py ``fields_in_use``);
    ``hooks``: the webhooks that carry personal fields (``mail.webhooks.recipients``), listed as recipients."""
    lang = lang if lang in TEXT else "en"
    return Notice(lang, TEXT[lang], settings, frozenset(asked), hooks)


def record_of_processing(settings: Settings, lang: str = "en", asked: frozenset[str] = frozenset(),
                         hooks: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The record of processing activities (GDPR Article 30) from the same
    settings as the notice, in ``lang`` (the console's language; record.po):
    its version and date, both kinds of data subject (visitors, and staff
    whose accounts and actions are kept), every kind of record with its
    retention, and the processors."""
    lang = lang if lang in TEXT else "en"
    r, reg = settings.retention, settings.notice

    def _(message: str, **params: object) -> str:
        return gettext(lang, message, **params)

    def own(field: str, source: Any = None) -> str:  # the register's own words in this language
        return getattr(source or reg, f"{field}_{lang}")

    kinds = {"hosting": _("hosting"), "mail": _("mail relay"), "other": _("other")}
    hook_words = {"name": _("name"), "email": _("email address"), "text": _("message text")}
    marketing = reg.marketing.enabled
    purposes = [own("purpose"), _("the security of the register: staff accounts and an access log of what they do")]
    if marketing:
        purposes.append(_("{purpose} (consent, wording version {version})", purpose=own("purpose", reg.marketing),
                          version=reg.marketing.consent_version))
    processors = [{**p.model_dump(), "kind": kinds[p.kind]} for p in reg.processors]
    return {
        "controller": reg.controller.model_dump(),
        "version": reg.version,
        "date": reg.updated.isoformat(),
        "contact": reg.contact.model_dump(),
        "data_protection_officer": reg.dpo.model_dump() if reg.dpo else None,
        "register": own("name"),
        "purposes": purposes,
        "legal_basis": own("legal_basis") + (" " + _("Marketing contacts: the data subject's consent (GDPR Article "
                                                     "6(1)(a)).") if marketing else ""),
        "categories_of_data_subjects": [
            _("visitors of the organisation's website who use the chat or its email form"),
            _("the controller's staff who use the service (agents, administrators, the person handling register "
              "matters)"),
        ],
        "categories_of_personal_data": [
            _("browser family and major version, operating system and version, referrer, page, language "
              "(collected automatically)"),
            _("the page the visitor is on while a chat is open (collected automatically)"),
            _("chat messages, which may contain what the visitor hands over (e.g. name, email, student number)"),
            _("internal notes and labels staff add to a conversation"),
            _("files attached to a chat (images, PDF files)"),
            _("ratings of a conversation and their comments"),
            _("email addresses a conversation's transcript was sent to"),
            _("name, email address and message from the email form, and the replies sent"),
            *([prechat_line(lang, asked)] if asked else []),
            _("a random visitor identifier kept in the visitor's browser after they open the chat; agents see a "
              "returning browser's earlier chats") if settings.returning_visitor_history else
            _("a random visitor identifier kept in the visitor's browser after they open the chat"),
            *([_("consent to marketing email: the wording's version and the time")] if marketing else []),
            _("staff: name, email address, roles, password hash, two-factor settings, sessions"),
            *([_("staff: per-agent report figures (chats answered and first-answer times per day), shown to "
                 "administrators")] if settings.reports_per_agent else []),
            _("the access log: which member of staff looked at or changed which record, and when"),
        ],
        "recipients": [_("the controller's own staff with individual accounts")]
        + [_("processor: {name}", name=p.name) + (f" ({p.location})" if p.location else "") + f", {kinds[p.kind]}"
           + (f": {p.service}" if p.service else "") for p in reg.processors]
        + [_("webhook: {name} ({host}), receives: {fields}", name=h["name"], host=h["host"],
             fields=", ".join(hook_words[f] for f in h["personal"] if f in hook_words)) for h in hooks],
        "processors": processors,
        "transfers_outside_eea": _("none") if not reg.transfers_outside_eea else _("see the privacy notice"),
        "retention_days": {"chat": r.chat_days, "offline_messages": r.offline_days, "metadata": r.metadata_days,
                           "audit_log": r.audit_days, "backups": r.backups_days},
        "retention_notes": [
            _("notes, labels, attachments, ratings and transcript addresses go with their conversation"),
            _("staff accounts: while the person has access; disabled accounts are kept for the access log"),
            _("restricted records are kept past their period, hidden from all but the privacy role, until the "
              "restriction is lifted"),
            _("the reports' daily aggregates are counts per day, hour and department with no personal data (no "
              "names, texts or identifiers): they outlive the chats and are not part of erasure; per-agent figures "
              "go with the staff account"),
        ],
        "automated_decision_making": _("none"),
        "security_measures": [
            _("individual staff accounts with roles; argon2id passwords; optional or required two-factor sign-in"),
            _("server-side sessions with idle and absolute timeouts; CSRF protection; strict Content-Security-Policy"),
            _("a hash-chained audit log of every view of personal data"),
            _("no IP addresses stored; data kept on the controller's own server only") if not processors else
            _("no IP addresses stored"),
        ],
    }
