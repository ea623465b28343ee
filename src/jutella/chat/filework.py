"""The work an upload costs, in two parts (docs/attachments.md):

- ``dimensions``: the picture's width and height read from its header bytes
  by hand (PNG's IHDR, WebP's VP8/VP8L/VP8X chunk, JPEG's SOF marker), cheap
  enough for the event loop, so a picture with too many pixels is refused
  before anything decodes it;
- ``clean``: what runs in the upload pool's worker processes (jutella/cpu.py):
  an image decoded and encoded again without its metadata, a PDF scanned
  from its first byte to its last. It takes and returns plain data and
  raises only :class:`Refused` (one string argument, so it crosses the
  process boundary); chat/attachments.py turns that into the user's message.

This module imports nothing of jutella, so a worker process loads Pillow and
nothing more.
"""

from __future__ import annotations

import io
import re
import struct

IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
PDF = "application/pdf"


class Refused(Exception):
    """The content is refused; ``args[0]`` is the reason's code."""

    @property
    def code(self) -> str:
        return str(self.args[0])


# -- dimensions from the header --------------------------------------------------------------
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        length = struct.unpack_from(">H", data, i + 2)[0]
        if marker in _SOF:
            if i + 9 > n:
                return None
            height, width = struct.unpack_from(">HH", data, i + 5)
            return width, height
        if length < 2:
            return None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    return None


def dimensions(data: bytes, content_type: str) -> tuple[int, int] | None:
    """(width, height) from the header, or None when the header is not one
    this reads (the file is then refused as unreadable)."""
    if content_type == "image/png":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            return struct.unpack_from(">II", data, 16)
        return None
    if content_type == "image/jpeg":
        return _jpeg_size(data)
    if content_type == "image/webp":
        return _webp_size(data)
    return None


# -- the worker's part --------------------------------------------------------------------------
def clean(data: bytes, content_type: str, max_pixels: int) -> bytes:
    """The bytes to store: an image re-encoded, a PDF as it came (once scanned)."""
    if content_type == PDF:
        check_pdf(data)
        return data
    return reencode(data, content_type, max_pixels)


def reencode(data: bytes, content_type: str, max_pixels: int) -> bytes:
    """Decode and encode again in the same format: no EXIF (GPS position,
    camera), no XMP, no comments, no ICC profile; the EXIF orientation is
    applied to the pixels first so the picture still stands the right way."""
    from PIL import Image, ImageOps

    # Pillow's own check, at open, against what its header says (a second
    # guard behind ``dimensions``): above twice this it refuses to open.
    Image.MAX_IMAGE_PIXELS = max_pixels
    fmt = IMAGE_FORMATS[content_type]
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
            if width * height > max_pixels or width <= 0 or height <= 0:
                raise Refused("too_many_pixels")
            im.load()
            im = ImageOps.exif_transpose(im)
            if fmt == "JPEG":
                im = im.convert("RGB") if im.mode not in ("RGB", "L") else im
            elif im.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                im = im.convert("RGBA")
            fresh = Image.new(im.mode, im.size)
            if im.mode == "P":
                fresh.putpalette(im.getpalette())
                if "transparency" in im.info:
                    fresh.info["transparency"] = im.info["transparency"]
            fresh.paste(im)
            out = io.BytesIO()
            if fmt == "JPEG":
                fresh.save(out, "JPEG", quality=90, optimize=True)
            elif fmt == "PNG":
                kwargs = {"transparency": fresh.info["transparency"]} if "transparency" in fresh.info else {}
                fresh.save(out, "PNG", optimize=True, **kwargs)
            else:
                fresh.save(out, "WEBP", quality=90)
            return out.getvalue()
    except Refused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused("too_many_pixels") from None
    except MemoryError:
        raise Refused("too_many_pixels") from None
    except Exception:  # Pillow raises many kinds on a broken or hostile file
        raise Refused("unreadable") from None


# -- PDF ------------------------------------------------------------------------------------
def _name(word: str) -> bytes:
    """A PDF name as a pattern: each letter also as its #xx escape (``/J#61vaScript``)."""
    return b"/" + b"".join(b"(?:" + re.escape(c.encode()) + b"|#" + (b"%02x" % ord(c)) + b")" for c in word)


# Markup that makes a file also an HTML or SVG page (a polyglot), anywhere in
# the file; and the actions a PDF reader would run: scripts and launching
# programs. (Streams the file compresses are not opened: this refuses what is
# in plain sight; the served PDF is a download in a sandbox, docs/attachments.md.)
_MARKUP = re.compile(rb"<\s*(?:html|script|svg|body|iframe|object|embed|!doctype)[\s>/]", re.IGNORECASE)
_ACTIONS = re.compile(rb"(?:" + _name("JavaScript") + rb"|" + _name("Launch") + rb")(?![A-Za-z0-9#])", re.IGNORECASE)
CHUNK = 1 << 20
OVERLAP = 64  # longer than any pattern's match: a marker split between two chunks is still seen
_TAIL_SPACE = b"\x00\t\n\x0c\r "


def check_pdf(data: bytes) -> None:
    """A PDF must look like one throughout, not only in its first bytes: it
    ends with ``%%EOF`` (only white space after it), and nowhere holds HTML or
    SVG markup or a script or launch action. Read in chunks of a MiB."""
    view = memoryview(data)
    end = len(view)
    while end and view[end - 1] in _TAIL_SPACE:
        end -= 1
    if view[max(0, end - 5):end].tobytes() != b"%%EOF":
        raise Refused("pdf_tail")
    start = 0
    while start < len(view):
        chunk = view[max(0, start - OVERLAP):start + CHUNK].tobytes()
        if _MARKUP.search(chunk):
            raise Refused("pdf_markup")
        if _ACTIONS.search(chunk):
            raise Refused("pdf_active")
        start += CHUNK


def logo(data: bytes, content_type: str, max_pixels: int, side: int) -> bytes:
    """A site profile's logo (chat/sites.py): re-encoded as :func:`reencode`
    does (no metadata), shrunk to at most ``side`` pixels a side, as PNG."""
    from PIL import Image

    cleaned = reencode(data, content_type, max_pixels)
    try:
        with Image.open(io.BytesIO(cleaned)) as im:
            im.load()
            im = im.convert("RGBA")
            im.thumbnail((side, side))
            out = io.BytesIO()
            im.save(out, "PNG", optimize=True)
            return out.getvalue()
    except Exception:
        raise Refused("unreadable") from None
