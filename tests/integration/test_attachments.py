"""Attachments, ratings and transcripts over HTTP, on SQLite and PostgreSQL:
what is accepted and refused, what a stored image still carries, who may
fetch a file, and that erasure and retention take the files out of the
cluster's file store (the database: store/files.py)."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image
from sqlalchemy import select

from jutella.chat import actions as chat
from jutella.chat.metadata import Metadata
from jutella.store.models import AuditEntry, ChatEvent, MailOutbox

from tests.helpers import add_staff, error_code, run_cli, sign_in

H = "X-Jutella-Visitor"
GPS_LAT = "60.1699"


def jpeg_with_gps(size=(64, 48), orientation: int | None = None) -> bytes:
    im = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam Maker"  # Make
    if orientation:
        exif[0x0112] = orientation
    gps = {1: "N", 2: (60.0, 10.0, 11.64), 3: "E", 4: (24.0, 56.0, 20.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif.tobytes(), comment=b"where-i-live " + GPS_LAT.encode())
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 255, 128)).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
POLYGLOT = b"%PDF-1.4\n<html><script>alert(1)</script></html>\n"  # no %%EOF: not a PDF reader's file either
EXE = b"MZ\x90\x00" + b"\x00" * 60


def new_visitor_with_chat(live, text: str = "Hei, liite tulossa") -> tuple[str, int]:
    visitor, token = live.call(chat.new_visitor, live.rt)
    posted = live.call(chat.post_visitor_message, live.rt, visitor_id=visitor.id, client_id="c1", body=text,
                       meta=Metadata())
    return token, posted.conversation.id


def upload(client, token: str | None, data: bytes, name: str = "kuva.jpg", url="/api/v1/public/attachments"):
    headers = {H: token} if token else {}
    return client.post(url, headers=headers, files={"file": (name, data, "application/octet-stream")})


def stored_files(live) -> list[str]:
    """The keys in the file store; nothing is ever written to the host's disk."""
    folder = Path(live.rt.settings.data_dir) / "attachments"
    assert not folder.exists() or not any(folder.iterdir())
    return sorted(live.call(_keys, live))


def test_jpeg_is_stripped_of_exif_and_access_is_limited(live):
    token, conv = new_visitor_with_chat(live)
    http = live.client()
    r = upload(http, token, jpeg_with_gps(orientation=6), "../../etc/Loma\u202ekuva.exe.jpg")
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["type"] == "image/jpeg" and info["conversation"] == conv
    assert "/" not in info["name"] and "\u202e" not in info["name"] and info["name"].endswith(".jpg")
    assert len(info["id"]) >= 43  # >= 256 bits in the URL

    got = http.get(info["url"], headers={H: token})
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert "private" in got.headers["cache-control"] and "no-store" in got.headers["cache-control"]
    body = got.content
    assert b"Exif" not in body and b"SecretCam" not in body and GPS_LAT.encode() not in body
    with Image.open(io.BytesIO(body)) as im:
        assert not im.getexif() and "exif" not in im.info and "comment" not in im.info
        assert im.size == (48, 64)  # orientation 6 applied to the pixels before EXIF went away

    # the event is in the conversation, in order, for the visitor and staff
    events = live.call(chat.events_since, live.rt, conv, 0, for_visitor=True)
    assert [e["kind"] for e in events] == ["message", "attachment"]
    assert events[1]["data"]["attachment"]["id"] == info["id"]

    other_token, _ = new_visitor_with_chat(live, "toinen")
    assert http.get(info["url"], headers={H: other_token}).status_code == 404
    assert http.get(info["url"]).status_code == 404
    assert http.get(info["url"] + "x", headers={H: token}).status_code == 404
    assert http.get(f"{info['url']}?token={token}").status_code == 404  # never from a URL

    add_staff(live, "aino@example.org", ["agent"])
    staff = sign_in(live, "aino@example.org")
    assert staff.get(info["url"]).status_code == 200
    async def views():
        async with live.rt.db.reader() as s:
            return len((await s.execute(select(AuditEntry).where(AuditEntry.action == "attachment.view")))
                       .scalars().all())
    assert live.call(views) == 1
    add_staff(live, "admin@example.org", ["admin"])
    assert sign_in(live, "admin@example.org").get(info["url"]).status_code == 404  # no agent role


@pytest.mark.parametrize("backend", ["sqlite"])
def test_types_are_sniffed_from_content(live):
    token, _conv = new_visitor_with_chat(live)
    http = live.client()
    for data, name in ((SVG, "kuva.png"), (HTML, "kuva.jpg"), (GIF, "a.gif"), (POLYGLOT, "a.pdf"), (EXE, "a.pdf"),
                       (b"\xff\xd8\xff\xe0 not really a jpeg", "x.jpg")):
        r = upload(http, token, data, name)
        assert r.status_code == 415, (name, r.text)
        assert r.json()["error"]["message"]
    assert "PNG, JPEG, WebP" in upload(http, token, SVG, "x.svg").json()["error"]["message"]
    r = upload(http, token, png(), "kuva.svg")
    assert r.status_code == 201 and r.json()["type"] == "image/png" and r.json()["name"] == "kuva.png"
    r = upload(http, token, PDF, "lasku.pdf")
    assert r.status_code == 201 and r.json()["type"] == "application/pdf"
    got = http.get(r.json()["url"], headers={H: token})
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.content == PDF
    fi = upload(http, token, SVG, "x.svg")
    assert fi.status_code == 415
    fi = http.post("/api/v1/public/attachments", headers={H: token, "Accept-Language": "fi"},
                   files={"file": ("x.svg", SVG, "image/svg+xml")})
    assert "PDF" in fi.json()["error"]["message"] and fi.json()["error"]["message"] != \
        upload(http, token, SVG).json()["error"]["message"]
    assert upload(http, None, png()).status_code == 401
    assert upload(http, "forged-token", png()).status_code == 401
    # nothing refused left anything behind
    assert len(stored_files(live)) == 2


@pytest.fixture
def settings_overrides():
    return {"max_attachment_bytes": 64 * 1024}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_size_limit_and_closed_chat(live):
    token, conv = new_visitor_with_chat(live)
    http = live.client()
    big = b"%PDF-1.4\n" + b"0" * (200 * 1024) + b"\n%%EOF\n"
    r = upload(http, token, big, "iso.pdf")
    assert r.status_code == 413 and error_code(r) == "too_large" and "64 kB" in r.json()["error"]["message"]
    just = b"%PDF-1.4\n" + b"0" * (60 * 1024) + b"\n%%EOF\n"
    assert upload(http, token, just, "ok.pdf").status_code == 201
    live.call(chat.close, live.rt, conversation_id=conv, by="visitor")
    r = upload(http, token, png())
    assert r.status_code == 409 and error_code(r) == "no_conversation"
    assert len(stored_files(live)) == 1


def test_agent_upload_and_rating(live):
    token, conv = new_visitor_with_chat(live)
    add_staff(live, "aino@example.org", ["agent"])
    staff = sign_in(live, "aino@example.org")
    no_csrf = live.client(cookies=staff.cookies)
    assert upload(no_csrf, None, png(), url=f"/api/v1/conversations/{conv}/attachments").status_code == 403
    r = upload(staff, None, png(), "ohje.png", url=f"/api/v1/conversations/{conv}/attachments")
    assert r.status_code == 201, r.text
    detail = staff.get(f"/api/v1/conversations/{conv}").json()
    assert detail["conversation"]["state"] == "active"  # writing accepted it
    kinds = [(e["kind"], e["author"]) for e in detail["events"]]
    assert ("attachment", "agent") in kinds
    assert live.client().get(r.json()["url"], headers={H: token}).status_code == 200  # the visitor sees it

    http = live.client()
    rate = lambda body, t=token: http.post("/api/v1/public/rating", headers={H: t}, json=body)  # noqa: E731
    r = rate({"rating": 4, "comment": "Nopea apu"})
    assert r.status_code == 409 and error_code(r) == "not_closed"
    staff.post(f"/api/v1/conversations/{conv}/close")
    assert rate({"rating": 6}).status_code == 422
    assert rate({"rating": 0}).status_code == 422
    other, _ = new_visitor_with_chat(live, "muu")
    assert rate({"rating": 5, "conversation": conv}, other).status_code == 404
    r = rate({"rating": 4, "comment": "Nopea apu"})
    assert r.status_code == 200 and r.json() == {"conversation": conv, "rating": 4, "comment": "Nopea apu"}
    r = rate({"rating": 1})
    assert r.status_code == 409 and error_code(r) == "already_rated"
    rating = staff.get(f"/api/v1/conversations/{conv}").json()["rating"]
    assert rating["rating"] == 4 and rating["rating_comment"] == "Nopea apu"


def test_transcripts_email_and_privacy(live, smtp, database_url):
    token, conv = new_visitor_with_chat(live, "Kysymys jäsenkortista")
    add_staff(live, "aino@example.org", ["agent"])
    agent_id = add_staff(live, "eve@example.org", ["agent"])
    add_staff(live, "chair@example.org", ["privacy"])
    staff = sign_in(live, "aino@example.org")
    live.call(chat.post_agent_message, live.rt, agent_id=agent_id, conversation_id=conv, client_id="a1",
              body="Kortti tulee postissa.")

    from jutella.chat.notes import post_note
    live.call(post_note, live.rt, agent_id=agent_id, conversation_id=conv, body="SISAINEN-MUISTIINPANO",
              client_id="n1")
    http = live.client()
    upload(http, token, jpeg_with_gps(), "kuva.jpg")

    page = http.get("/api/v1/public/transcript", headers={H: token}, params={"lang": "fi"})
    assert page.status_code == 200 and page.headers["content-disposition"].startswith("attachment")
    assert "Kysymys jäsenkortista" in page.text and "Kortti tulee postissa." in page.text
    assert "SISAINEN-MUISTIINPANO" not in page.text and "Liite: kuva.jpg" in page.text
    assert http.get("/api/v1/public/transcript").status_code == 401
    printable = staff.get(f"/api/v1/conversations/{conv}/transcript")
    assert printable.status_code == 200 and "Kortti tulee postissa." in printable.text
    assert "SISAINEN-MUISTIINPANO" not in printable.text and "<style>" not in printable.text

    r = http.post("/api/v1/public/transcript/email", headers={H: token}, json={"email": "not-an-address"})
    assert r.status_code == 400
    address = "Liisa.Virtanen@example.fi"
    r = http.post("/api/v1/public/transcript/email", headers={H: token}, json={"email": address, "lang": "fi"})
    assert r.status_code == 202, r.text

    async def mails():
        async with live.rt.db.reader() as s:
            rows = (await s.execute(select(MailOutbox).order_by(MailOutbox.id))).scalars()
            return [(m.kind, m.to_addr, m.body_text) for m in rows]
    kind, to, body = live.call(mails)[0]
    assert kind == "transcript" and to == address
    assert "Kortti tulee postissa." in body and "SISAINEN-MUISTIINPANO" not in body
    # staff send one too (CSRF-checked, audited)
    assert live.client(cookies=staff.cookies).post(f"/api/v1/conversations/{conv}/transcript/email",
                                                   json={"email": "x@example.fi"}).status_code == 403
    r = staff.post(f"/api/v1/conversations/{conv}/transcript/email", json={"email": "tuki@example.fi"})
    assert r.status_code == 202
    async def emailed():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(AuditEntry).where(
                AuditEntry.action == "conversation.transcript_email"))).scalars().all()
    assert len(live.call(emailed)) == 1 and [m[1] for m in live.call(mails)] == [address, "tuki@example.fi"]

    # the address is part of the register: found, exported, erased (files too)
    chair = sign_in(live, "chair@example.org")
    matches = chair.get("/api/v1/privacy/subjects", params={"q": "liisa.virtanen"}).json()
    assert {(m["kind"], m["field"]) for m in matches} >= {("conversation", "transcript_email"),
                                                          ("email", "recipient")}
    sel = {"conversations": sorted({m["id"] for m in matches if m["kind"] == "conversation"}),
           "offline_messages": [], "emails": sorted({m["id"] for m in matches if m["kind"] == "email"})}
    copy = chair.post("/api/v1/privacy/export", json=sel).json()
    c = copy["conversations"][0]
    assert c["transcript_emails"][0]["to"] == address and c["attachments"][0]["name"] == "kuva.jpg"
    html = chair.post("/api/v1/privacy/export", params={"format": "html", "lang": "en"}, json=sel).text
    assert "kuva.jpg" in html and address in html
    # the chair (privacy role only) can open the file the copy lists, and that look is audited
    url = c["attachments"][0]["url"]
    got = chair.get(url)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert live.client().get(url).status_code == 404

    async def file_views():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(AuditEntry.actor_id).where(
                AuditEntry.action.like("attachment.%")))).scalars().all()
    assert len(live.call(file_views)) >= 1
    assert len(stored_files(live)) == 1
    counts = chair.post("/api/v1/privacy/erase", json={**sel, "confirm": True}).json()["counts"]
    assert counts["attachments"] == 1 and counts["transcript_emails"] == 2
    assert stored_files(live) == []
    assert chair.get("/api/v1/privacy/subjects", params={"q": "liisa.virtanen"}).json() == []

    # the command line finds the address too (on a fresh request)
    token2, conv2 = new_visitor_with_chat(live, "toinen")
    live.call(chat.post_agent_message, live.rt, agent_id=agent_id, conversation_id=conv2, client_id="a1", body="ok")
    assert http.post("/api/v1/public/transcript/email", headers={H: token2},
                     json={"email": "cli@example.fi"}).status_code == 202
    # erasing only the mail (not the chat) takes the address kept with it too
    token3, conv3 = new_visitor_with_chat(live, "kolmas")
    live.call(chat.post_agent_message, live.rt, agent_id=agent_id, conversation_id=conv3, client_id="a1", body="ok")
    assert http.post("/api/v1/public/transcript/email", headers={H: token3},
                     json={"email": "only-mail@example.fi"}).status_code == 202
    mail_only = [m["id"] for m in chair.get("/api/v1/privacy/subjects", params={"q": "only-mail@"}).json()
                 if m["kind"] == "email"]
    counts = chair.post("/api/v1/privacy/erase", json={"conversations": [], "offline_messages": [],
                                                       "emails": mail_only, "confirm": True}).json()["counts"]
    assert counts["emails"] == 1 and counts["transcript_emails"] == 1
    assert chair.get("/api/v1/privacy/subjects", params={"q": "only-mail@"}).json() == []
    if database_url.startswith("sqlite"):
        env = {"JUTELLA_DATA_DIR": str(live.rt.settings.data_dir), "JUTELLA_DATABASE_URL": database_url}
        found = run_cli("subject", "find", "cli@example.fi", env=env)
        assert found.returncode == 0 and f"conversation" in found.stdout and str(conv2) in found.stdout


def test_retention_removes_files(live, clock):
    token, conv = new_visitor_with_chat(live)
    http = live.client()
    assert upload(http, token, png(), "a.png").status_code == 201
    assert upload(http, token, PDF, "b.pdf").status_code == 201
    live.call(live.rt.files.put, "ab" * 24, b"bytes no row names")  # a store outside the database could leave one
    old_host_file = Path(live.rt.settings.data_dir) / "attachments" / ("cd" * 24)  # an older jutella's orphan
    old_host_file.parent.mkdir(parents=True, exist_ok=True)
    old_host_file.write_bytes(b"left by a crash")
    import os
    os.utime(old_host_file, (0, 0))
    assert len(live.call(_keys, live)) == 3
    from jutella.privacy import retention
    counts = live.call(retention.run, live.rt)
    assert counts["attachments"] == 0 and counts["orphan_files"] == 2
    assert len(stored_files(live)) == 2 and not old_host_file.parent.exists()
    clock.advance(days=live.rt.settings.retention.chat_days + 1)
    counts = live.call(retention.run, live.rt)
    assert counts["attachments"] == 2 and counts["conversations"] == 1
    assert stored_files(live) == []

    async def left():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(ChatEvent))).scalars().all()
    assert live.call(left) == []
    assert json.dumps(counts)


async def _keys(live) -> list[str]:
    return [e.key async for e in live.rt.files.entries()]


def raw_upload(client, token: str, data: bytes, filename: bytes):
    """A multipart upload whose file name goes as these exact bytes (httpx
    would percent-encode quotes and control characters on its own)."""
    boundary = b"jutellaBoundary7MA4YWxkTrZu0gW"
    body = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename
            + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n")
    return client.post("/api/v1/public/attachments", content=body, headers={
        H: token, "Content-Type": "multipart/form-data; boundary=" + boundary.decode()})


DISPOSITION = re.compile(r"""(attachment|inline); filename="([ !#$&-:<-\[\]-~]*)"(?:; filename\*=UTF-8''([A-Za-z0-9%._~-]+))?""")


def test_a_file_name_cannot_break_the_content_disposition_header(live):
    """Quotes, backslashes, semicolons, CR/LF (raw, escaped and
    percent-encoded), header-looking text and non-ASCII names: the file is
    served with exactly one Content-Disposition, whose ``filename`` is plain
    ASCII without a quote, and whose ``filename*`` (RFC 5987) gives the
    stored name back exactly."""
    token, _conv = new_visitor_with_chat(live)
    http = live.client()
    names = [
        b'a\\"; filename="evil.html"; x=\\".pdf',
        b'x\\"\r\nSet-Cookie: pwned=1\r\nX-Evil: \\".pdf',
        b"x\rSet-Cookie: pwned=2.pdf",
        b"x\nSet-Cookie: pwned=3.pdf",
        b"x%0d%0aSet-Cookie:%20pwned=4.pdf",
        b"inline; filename=x.html",
        "Ääkköset – raportti ✓ 😀.pdf".encode(),
        "שלום\u202egpj.exe.pdf".encode(),
        "line\u2028sep\u0085nel\x0bvt\x7fdel.png".encode(),
        b"\xe4iti \xff\xfe.pdf",
        b"..\\..\\windows\\system32\\<script>alert(1)</script>.pdf",
        b"%E2%80%AE; filename*=UTF-8''evil.html.pdf",
        b"=?utf-8?q?evil=2Ehtml?=.pdf",
    ]
    served = 0
    for raw in names:
        data = png() if raw.endswith(b".png") else PDF
        r = raw_upload(http, token, data, raw)
        if r.status_code == 400:  # a name the multipart parser does not take: refused whole, fine
            assert error_code(r) == "bad_upload", (raw, r.text)
            continue
        assert r.status_code == 201, (raw, r.text)
        stored = r.json()["name"]
        assert not any(ord(c) < 32 or 0x7f <= ord(c) < 0xa0 or c in "\u2028\u2029\u202e" for c in stored), stored
        got = http.get(r.json()["url"], headers={H: token})
        assert got.status_code == 200
        raw_headers = [(k.lower(), v) for k, v in got.headers.raw]
        assert [k for k, _ in raw_headers].count(b"content-disposition") == 1, raw_headers
        assert b"set-cookie" not in [k for k, _ in raw_headers] and b"x-evil" not in [k for k, _ in raw_headers]
        value = dict(raw_headers)[b"content-disposition"].decode("ascii")
        m = DISPOSITION.fullmatch(value)
        assert m, value
        assert m.group(1) == ("inline" if raw.endswith(b".png") else "attachment")
        if m.group(3) is None:
            assert m.group(2) == stored, (value, stored)
        else:
            assert unquote(m.group(3), encoding="utf-8", errors="strict") == stored, (value, stored)
            assert len(m.group(2)) == len(stored)
        served += 1
    assert served >= len(names) - 3
