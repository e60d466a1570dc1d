"""Real files made for the documents tests: photos with GPS in their EXIF, PNGs, PDFs, HEIC,
and the broken ones (truncated, renamed text)."""

from __future__ import annotations

import io
from typing import Any

import pillow_heif
from PIL import Image
from pypdf import PdfWriter
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

GPS_IFD = 0x8825
ORIENTATION = 0x0112
# 日照市 东港区: where the photo "was taken".
GPS = {1: "N", 2: (35.0, 25.0, 0.5), 3: "E", 4: (119.0, 31.0, 12.0)}


def jpeg_with_gps(size: tuple[int, int] = (120, 80), *, orientation: int = 1) -> bytes:
    """A JPEG photo whose EXIF carries a GPS position, a camera model and a comment."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x0110] = "Phone-X"  # Model
    exif[GPS_IFD] = GPS
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(
        out, "JPEG", exif=exif.tobytes(), comment=b"taken at home"
    )
    return out.getvalue()


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    """A PNG with a text chunk (metadata that must not survive)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "someone")
    out = io.BytesIO()
    Image.new("RGBA", size, (10, 120, 200, 255)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def heic(size: tuple[int, int] = (64, 48)) -> bytes:
    """A HEIC photo (what iPhones take)."""
    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", size, (30, 160, 60)).save(out, "HEIF")
    return out.getvalue()


def pdf(pages: int = 1) -> bytes:
    """A PDF of blank A4 pages."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    """A photo cut off half-way (an upload interrupted)."""
    data = jpeg_with_gps((400, 300))
    return data[: len(data) // 2]


TEXT = "这不是图片，只是改了扩展名的文本文件。\n".encode()


def multipart(
    fields: dict[str, str], data: bytes, name: str = "photo.jpg", mimetype: str | None = None
) -> dict[str, Any]:
    """``client.post`` arguments of a multipart body with ``fields`` and the file ``data``,
    encoded in memory (the test client spools a large body to a file it never closes)."""
    part = FileStorage(io.BytesIO(data), filename=name, content_type=mimetype)
    boundary, body = encode_multipart({**fields, "file": part})
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}
