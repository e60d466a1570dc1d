"""What an upload really is: sniffed from the bytes, images re-encoded without metadata."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from server.documents import content
from server.errors import ValidationFailed
from tests import files


def _image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_a_phone_photo_loses_its_gps_and_every_other_metadata():
    original = files.jpeg_with_gps()
    assert _image(original).getexif().get_ifd(files.GPS_IFD)  # the fixture does carry GPS
    clean = content.clean(original)
    assert clean.content_type == "image/jpeg"
    stored = _image(clean.data)
    assert stored.format == "JPEG" and stored.size == (120, 80)
    assert dict(stored.getexif()) == {}
    assert b"Exif" not in clean.data and b"Phone-X" not in clean.data
    assert b"taken at home" not in clean.data


def test_an_exif_orientation_is_applied_to_the_pixels_before_it_goes():
    clean = content.clean(files.jpeg_with_gps((120, 80), orientation=6))  # rotated 90°
    assert _image(clean.data).size == (80, 120)


def test_a_png_stays_a_png_without_its_text_chunks():
    clean = content.clean(files.png())
    assert clean.content_type == "image/png" and clean.extension == "png"
    assert _image(clean.data).size == (64, 48)
    assert b"someone" not in clean.data


def test_a_heic_photo_is_stored_as_jpeg():
    clean = content.clean(files.heic())
    assert clean.content_type == "image/jpeg" and _image(clean.data).size == (64, 48)


def test_a_pdf_that_parses_is_kept_as_sent():
    data = files.pdf(pages=2)
    clean = content.clean(data)
    assert clean.content_type == "application/pdf" and clean.data == data
    assert len(clean.sha256) == 64


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(files.TEXT, id="text renamed .jpg"),
        pytest.param(b"", id="empty"),
        pytest.param(b"GIF89a" + b"\x00" * 20, id="gif"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
        pytest.param(b"PK\x03\x04" + b"\x00" * 30, id="zip"),
    ],
)
def test_anything_but_jpeg_png_heif_pdf_is_refused(data):
    with pytest.raises(ValidationFailed) as refused:
        content.clean(data)
    assert refused.value.code == "invalid_document" and refused.value.errors["file"]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(files.truncated_jpeg(), id="truncated jpeg"),
        pytest.param(files.png()[:40], id="truncated png"),
        pytest.param(b"\xff\xd8\xff\xe0" + b"garbage" * 10, id="jpeg magic, no image"),
        pytest.param(b"%PDF-1.7\nnot really a pdf", id="pdf magic, no pdf"),
        pytest.param(files.pdf()[:100], id="truncated pdf"),
        pytest.param(files.heic()[:60], id="truncated heic"),
    ],
)
def test_a_damaged_file_is_refused(data):
    with pytest.raises(ValidationFailed) as refused:
        content.clean(data)
    assert refused.value.code == "invalid_document"


def test_an_image_claiming_a_huge_canvas_is_refused_before_decoding():
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    with pytest.raises(ValidationFailed) as refused:
        content.clean(bomb)
    assert "像素" in refused.value.errors["file"][0]


def test_an_encrypted_pdf_is_refused():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(files.pdf())))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(ValidationFailed) as refused:
        content.clean(out.getvalue())
    assert "加密" in refused.value.errors["file"][0]


def test_size_limit_is_a_413():
    content.check_size(10, 10)
    with pytest.raises(content.DocumentTooLarge) as refused:
        content.check_size(11, 10)
    assert refused.value.status == 413


def test_thumbnails_are_small_jpegs():
    clean = content.clean(files.jpeg_with_gps((1200, 900)))
    thumb = _image(content.thumbnail(clean.data))
    assert thumb.format == "JPEG" and max(thumb.size) == 320
