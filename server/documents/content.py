"""What an uploaded file really is, and the clean copy that is stored.

The type is decided by the bytes (magic numbers, then the decoder), never by the file name or
the ``Content-Type`` a client sent. Images are decoded and re-encoded, which drops their
metadata (a phone photo's EXIF carries where it was taken); HEIC/HEIF photos (iPhones) become
JPEG. PDFs must parse and are stored as sent. Anything else is refused.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageOps
from pypdf import PdfReader

from server.errors import DomainError, ValidationFailed

pillow_heif.register_heif_opener()

# Larger images are refused before they are decoded (a small file can claim a huge canvas).
MAX_PIXELS = 50_000_000
THUMBNAIL_SIZE = (320, 320)
JPEG_QUALITY = 90

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})


class DocumentTooLarge(DomainError):
    """The file is above DOCUMENT_MAX_BYTES (413)."""

    status = 413
    code = "document_too_large"


@dataclass(frozen=True)
class CleanFile:
    """The bytes to store and what they are."""

    data: bytes
    content_type: str
    sha256: str

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.content_type]


def refuse(message_zh: str, message_en: str) -> ValidationFailed:
    """A 422 about the uploaded file."""
    return ValidationFailed(
        "上传的文件无法接受：" + message_zh,
        code="invalid_document",
        message_en="The uploaded file is not accepted: " + message_en,
        errors={"file": [message_zh]},
    )


def sniff(data: bytes) -> str | None:
    """The format the leading bytes announce: ``jpeg``, ``png``, ``heif``, ``pdf`` or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "heif"
    return None


_UNSUPPORTED = ("仅接受 JPEG、PNG、HEIC/HEIF 图片或 PDF 文件", "only JPEG, PNG, HEIC/HEIF or PDF")


def check_size(size: int, limit: int) -> None:
    """413 when ``size`` bytes exceed ``limit``."""
    if size > limit:
        megabytes = f"{limit / (1024 * 1024):g}"
        raise DocumentTooLarge(
            f"文件过大：每个文件不能超过 {megabytes} MB。",
            message_en=f"The file is too large: at most {megabytes} MB per file.",
            errors={"file": [f"不能超过 {megabytes} MB。"]},
        )


def clean(data: bytes) -> CleanFile:
    """The file to store for upload ``data``; a 422 (``invalid_document``) when it is not an
    image or PDF that can be read in full."""
    if not data:
        raise refuse("文件为空", "the file is empty")
    found = sniff(data)
    if found is None:
        raise refuse(*_UNSUPPORTED)
    if found == "pdf":
        _check_pdf(data)
        return _made(data, "application/pdf")
    return _reencode(data, found)


def _made(data: bytes, content_type: str) -> CleanFile:
    return CleanFile(data, content_type, hashlib.sha256(data).hexdigest())


_FORMATS = {"jpeg": {"JPEG", "MPO"}, "png": {"PNG"}, "heif": {"HEIF"}}


def _open_image(data: bytes, expected: set[str]) -> Image.Image:
    damaged = ("图片已损坏或不完整", "the image is damaged or incomplete")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=sorted(expected))
            if image.width * image.height > MAX_PIXELS:
                raise refuse("图片像素过多", "the image has too many pixels")
            image.load()
    except ValidationFailed:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise refuse("图片像素过多", "the image has too many pixels") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError):
        raise refuse(*damaged) from None
    return image


def _reencode(data: bytes, found: str) -> CleanFile:
    image = _open_image(data, _FORMATS[found])
    try:
        # The orientation tag goes with the rest of the metadata: turn the pixels upright.
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError):
        raise refuse("图片已损坏或不完整", "the image is damaged or incomplete") from None
    icc = image.info.get("icc_profile")
    image.info = {}  # comments, text chunks, EXIF, XMP: none of it is written again
    out = io.BytesIO()
    if found == "png":
        image.save(out, format="PNG", icc_profile=icc, optimize=False)
        return _made(out.getvalue(), "image/png")
    if image.mode not in {"RGB", "L"}:
        image = image.convert("RGB")
    image.save(out, format="JPEG", quality=JPEG_QUALITY, icc_profile=icc)
    return _made(out.getvalue(), "image/jpeg")


def _check_pdf(data: bytes) -> None:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise refuse("PDF 已加密，请上传未加密的文件", "the PDF is encrypted")
        if len(reader.pages) < 1:
            raise refuse("PDF 没有页面", "the PDF has no pages")
    except ValidationFailed:
        raise
    except Exception:  # pypdf raises many kinds on a damaged file; any of them is a refusal
        raise refuse("PDF 文件已损坏或无法读取", "the PDF is damaged or unreadable") from None


def thumbnail(data: bytes) -> bytes:
    """A small JPEG of a stored image (stored images were re-encoded by ``clean``)."""
    image = Image.open(io.BytesIO(data), formats=["JPEG", "PNG"])
    image.thumbnail(THUMBNAIL_SIZE)
    if image.mode not in {"RGB", "L"}:
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()
