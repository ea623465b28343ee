"""chat/filework.py: the dimensions read from a header agree with Pillow's for
every format and size, arbitrary bytes never make the reader fail, and the
PDF check sees a marker wherever it falls, a chunk boundary included."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from jutella.chat import filework

FORMATS = [("PNG", "image/png", {}), ("JPEG", "image/jpeg", {}), ("JPEG", "image/jpeg", {"progressive": True}),
           ("WEBP", "image/webp", {}), ("WEBP", "image/webp", {"lossless": True}),
           ("WEBP", "image/webp", {"exif": Image.Exif().tobytes()})]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(FORMATS), st.integers(1, 700), st.integers(1, 700))
def test_dimensions_from_the_header_are_pillows(fmt, width, height):
    name, content_type, options = fmt
    out = io.BytesIO()
    Image.new("RGB", (width, height), (9, 99, 199)).save(out, name, **options)
    assert filework.dimensions(out.getvalue(), content_type) == (width, height)


@given(st.binary(max_size=200), st.sampled_from(["image/png", "image/jpeg", "image/webp"]))
def test_any_bytes_give_a_size_or_none(data, content_type):
    for head in (b"", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", b"\xff\xd8\xff", b"RIFF\x00\x00\x00\x00WEBPVP8 "):
        size = filework.dimensions(head + data, content_type)
        assert size is None or (len(size) == 2 and all(isinstance(n, int) and n >= 0 for n in size))


@pytest.mark.parametrize("marker", [b"<script>", b"<HTML ", b"/JavaScript ", b"/L#61unch(", b"<svg/"])
@pytest.mark.parametrize("at", [10, filework.CHUNK - 4, filework.CHUNK + 3, 3 * filework.CHUNK])
def test_a_pdf_marker_is_found_anywhere(marker, at):
    data = b"%PDF-1.7\n" + b"0" * at + marker + b"\n%%EOF\r\n"
    with pytest.raises(filework.Refused):
        filework.check_pdf(data)
    filework.check_pdf(data.replace(marker, b"-" * len(marker)))
