"""Reading a visitor's reply by email (docs/mail.md "Replies by email").

:func:`extract` takes the raw message as received over LMTP and returns
plain data: the sender, the Message-ID, the reply's new text with the quoted
history removed (:func:`strip_quoted`), and the attachments' names and
bytes. It is CPU work on hostile input (MIME parsing, decoding base64,
HTML to text), so chat/email_replies.py runs it in the upload pool's worker
processes (jutella/cpu.py), never on the event loop: like
chat/filework.py it imports nothing of jutella, takes and returns plain
data, and raises only :class:`Unreadable`.
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser

MAX_TEXT = 20_000  # characters of new text kept (the rest is cut, and says so)
MAX_FILES = 10  # attachments looked at; more are refused by name


class Unreadable(Exception):
    """The message cannot be read as a mail at all."""


# -- quoted history -------------------------------------------------------------------------
# A line that starts the quoted history: everything from it on is the earlier mail.
_CUT = [re.compile(p, re.IGNORECASE) for p in (
    r"^\s*On\b.{0,300}\bwrote:\s*$",  # Gmail, Apple Mail, Thunderbird (en)
    r"^.{0,300}\bkirjoitti:\s*$",  # Finnish: "ti 7.12.2026 klo 10.00 Aino <a@b> kirjoitti:"
    r"^.{0,300}\bkirjoitit:\s*$",  # our own "… kirjoitit:" quoted back
    r"^.{0,300}\bskrev:\s*$",  # Swedish: "… skrev:"
    r"^\s*Den\b.{0,300}\bskrev\b.{0,300}:\s*$",  # Swedish: "Den 7 dec. 2026 kl. 10:00 skrev Aino <a@b>:"
    r"^\s*-{2,}\s*(Original Message|Alkuperäinen viesti|Ursprungligt meddelande|Vastaus|Forwarded message)"
    r"\s*-{2,}\s*$",  # Outlook and others
    r"^\s*_{10,}\s*$",  # Outlook's rule above "From: … Sent: …"
)]
# Outlook without a rule: a "From:" line followed within three lines by "Sent:"/"Date:"
_FROM = re.compile(r"^\s*\*?(From|Lähettäjä|Från|Lähettäjä)\s*:\*?\s", re.IGNORECASE)
_SENT = re.compile(r"^\s*\*?(Sent|Date|Lähetetty|Päivämäärä|Skickat|Datum|To|Vastaanottaja|Till)\s*:", re.IGNORECASE)
_WROTE_SPLIT = re.compile(r"^\s*On\b.{0,300}$", re.IGNORECASE)  # "On … <a@b>" / "wrote:" on the next line


def strip_quoted(text: str) -> str:
    """The new text of a reply: everything before the quoted history (an
    "On … wrote:" / "… kirjoitti:" / "… skrev:" line, an Outlook separator or
    header block), without lines starting with ">" and without trailing blank
    lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    end = len(lines)
    for i, line in enumerate(lines):
        if any(p.match(line) for p in _CUT):
            end = i
            break
        if _WROTE_SPLIT.match(line) and i + 1 < len(lines) and re.match(r"^\s*\S.{0,200}wrote:\s*$",
                                                                          lines[i + 1], re.IGNORECASE):
            end = i
            break
        if _FROM.match(line) and any(_SENT.match(x) for x in lines[i + 1:i + 4]):
            end = i
            break
    kept = [line.rstrip() for line in lines[:end] if not line.lstrip().startswith(">")]
    while kept and not kept[-1].strip():
        kept.pop()
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join(kept)


class _Text(HTMLParser):
    """HTML to text for a mail with no plain part: block elements end lines,
    quoted parts (``blockquote``, Gmail's ``gmail_quote``) are left out, and
    nothing of the markup survives."""

    SKIP = {"blockquote", "style", "script", "head", "title"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip: list[str] = []  # open tags whose content is skipped

    def handle_starttag(self, tag, attrs):
        classes = " ".join(v or "" for k, v in attrs if k == "class")
        if self.skip or tag in self.SKIP or "gmail_quote" in classes or "moz-cite-prefix" in classes:
            if tag not in ("br", "img", "hr", "meta", "link", "input"):
                self.skip.append(tag)
            return
        if tag in self.BLOCK:
            self._newline()

    def _newline(self) -> None:
        if self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def handle_endtag(self, tag):
        if self.skip:
            if self.skip[-1] == tag:
                self.skip.pop()
            return
        if tag in self.BLOCK:
            self._newline()

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_text(html: str) -> str:
    parser = _Text()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # a broken document: what was read so far
        parser.skip.clear()
    text = "".join(parser.out)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(" ".join(line.split()) for line in text.split("\n")))


# -- the message ------------------------------------------------------------------------------
def _clean_header(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = "".join(ch for ch in str(value) if ch >= " " and ch != "\x7f").strip()
    return value[:limit] or None


def _message_id(msg) -> str | None:
    try:
        return _clean_header(msg.get("Message-ID"), 200)
    except Exception:  # a header the parser cannot make sense of: no de-duplication for this mail
        return None


def extract(raw: bytes, envelope_from: str | None = None) -> dict:
    """``{"from": addr, "from_name": name, "message_id", "text", "cut",
    "files": [(filename, bytes)], "skipped": [filename]}`` from the raw mail.
    The sender is the From header's address (what the person sees in their
    mail program), else the envelope sender."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; this is a last resort
        raise Unreadable(type(exc).__name__) from None
    addr, name = None, None
    try:
        found = getaddresses([str(msg.get("From", ""))])
        for display, spec in found:
            if "@" in spec:
                addr, name = spec, display or None
                break
    except Exception:  # a From header beyond repair: the envelope sender then
        addr, name = None, None
    if addr is None and envelope_from and "@" in envelope_from:
        addr = envelope_from
    if addr is None:
        raise Unreadable("no sender")
    try:
        body = msg.get_body(preferencelist=("plain", "html"))
    except Exception:
        body = None
    text = ""
    if body is not None:
        try:
            content = body.get_content()
        except Exception:  # an unknown charset or a broken transfer encoding
            payload = body.get_payload(decode=True) or b""
            content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
        text = html_text(content) if body.get_content_type() == "text/html" else str(content)
    text = strip_quoted(text.replace("\x00", ""))
    cut = len(text) > MAX_TEXT
    files: list[tuple[str, bytes]] = []
    skipped: list[str] = []
    try:
        parts = list(msg.iter_attachments())
    except Exception:
        parts = []
    for part in parts:
        filename = _clean_header(part.get_filename(), 200) or "attachment"
        if part.get_content_maintype() in ("multipart", "message"):
            skipped.append(filename)
            continue
        if len(files) >= MAX_FILES:
            skipped.append(filename)
            continue
        try:
            data = part.get_payload(decode=True)
        except Exception:
            data = None
        if not isinstance(data, bytes) or not data:
            skipped.append(filename)
            continue
        files.append((filename, data))
    return {"from": _clean_header(addr, 320), "from_name": _clean_header(name, 200),
            "message_id": _message_id(msg), "text": text[:MAX_TEXT], "cut": cut,
            "files": files, "skipped": skipped}
