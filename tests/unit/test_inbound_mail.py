"""Reading a reply by email (mail/inbound.py): the new text without the quoted
history, in the shapes the common mail programs quote in (Gmail, Apple Mail,
Thunderbird, Outlook, in English, Finnish and Swedish), HTML-only mails, and
attachments."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from jutella.mail.inbound import Unreadable, extract, strip_quoted

NEW = "Kiitos vastauksesta!\nTulen huomenna."


@pytest.mark.parametrize("quoted", [
    "On Mon, 7 Dec 2026 at 10.00, Aino <chat@jamko.example> wrote:\n> Hei\n> olemme auki",
    "On Mon, 7 Dec 2026 at 10.00, Aino Asiakaspalvelija\n<chat@jamko.example> wrote:\n> Hei",
    "ma 7.12.2026 klo 10.00 Aino (<chat@jamko.example>) kirjoitti:\n> Hei",
    "7.12.2026 10.00 kirjoitit:\n> Milloin toimisto on auki?",  # our own "you wrote" quoted back
    "Den 7 dec. 2026 kl. 10:00 skrev Aino <chat@jamko.example>:\n> Hej",
    "-----Original Message-----\nFrom: Aino\nSent: Monday\nHei",
    "-----Alkuperäinen viesti-----\nLähettäjä: Aino\nHei",
    "________________________________\nFrom: Aino <chat@jamko.example>\nSent: 7. joulukuuta 2026 10.00\nHei",
    "Lähettäjä: Aino <chat@jamko.example>\nLähetetty: maanantai 7. joulukuuta 2026 10.00\nVastaanottaja: Maija\nHei",
    "> Hei\n> olemme auki 9-15.",
])
def test_the_quoted_history_is_removed(quoted):
    assert strip_quoted(f"{NEW}\n\n{quoted}\n") == NEW


def test_lines_quoted_between_the_new_ones_are_dropped_and_the_rest_is_kept():
    text = "> Milloin?\nHuomenna.\n> Missä?\nToimistolla.\n\n\n"
    assert strip_quoted(text) == "Huomenna.\nToimistolla."
    assert strip_quoted("Wrote: this is my own line\nOn my way") == "Wrote: this is my own line\nOn my way"


def mail(**parts) -> bytes:
    msg = EmailMessage()
    msg["From"] = parts.get("sender", "Maija Meikäläinen <maija@example.fi>")
    msg["To"] = "reply+abc@reply.example"
    msg["Message-ID"] = "<m1@example.fi>"
    if "html" in parts and "text" not in parts:
        msg.set_content(parts["html"], subtype="html")
    else:
        msg.set_content(parts.get("text", ""))
        if "html" in parts:
            msg.add_alternative(parts["html"], subtype="html")
    for name, data in parts.get("files", []):
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def test_a_mail_with_text_and_a_file():
    got = extract(mail(text=f"{NEW}\n\nOn Mon, Aino wrote:\n> x\n", files=[("lasku.pdf", b"%PDF-1.4 ...")]))
    assert got["from"] == "maija@example.fi" and got["from_name"] == "Maija Meikäläinen"
    assert got["message_id"] == "<m1@example.fi>" and got["text"] == NEW
    assert got["files"] == [("lasku.pdf", b"%PDF-1.4 ...")] and got["skipped"] == []


def test_an_html_only_mail_becomes_text_without_its_quote_or_markup():
    html = ("<html><head><style>p{color:red}</style></head><body><p>Kiitos <b>vastauksesta</b>!</p>"
            "<div>Tulen huomenna.<br></div><div class='gmail_quote'>On Mon Aino wrote:<blockquote>Hei</blockquote>"
            "</div><script>alert(1)</script></body></html>")
    got = extract(mail(html=html))
    assert got["text"] == "Kiitos vastauksesta!\nTulen huomenna."


def test_the_plain_part_wins_over_html():
    assert extract(mail(text="Plain words", html="<p>Html words</p>"))["text"] == "Plain words"


def test_a_header_cannot_smuggle_control_characters_and_no_sender_is_unreadable():
    got = extract(mail(text="x", files=[("a\x07b.pdf", b"%PDF-")]))
    assert got["files"][0][0] == "ab.pdf"
    with pytest.raises(Unreadable):
        extract(b"Subject: no sender\r\n\r\nhello\r\n")
    assert extract(b"Subject: no sender\r\n\r\nhello\r\n", "bounce@example.fi")["from"] == "bounce@example.fi"
