"""Tables written as .xlsx (openpyxl write-only mode) or CSV, row by row into a temporary file,
so an export's memory does not grow with its rows; the file is then sent in chunks."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import IO, Any
from urllib.parse import quote

from flask import Response

FORMATS = ("xlsx", "csv")
MIMETYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
# Larger than any export's pages in memory; a bigger file goes to disk.
_SPOOL_BYTES = 8 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


def _csv_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return "" if value is None else value


def write_csv(out: IO[bytes], headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """UTF-8 with a byte-order mark (Excel opens the Chinese headers right), CRLF lines."""
    import io

    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
    text.flush()
    text.detach()


def write_xlsx(
    out: IO[bytes],
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str,
    widths: Sequence[int] = (),
) -> None:
    """One sheet in write-only mode: rows go to disk as they come."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    for index, width in enumerate(widths):
        sheet.column_dimensions[_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    head = []
    for name in headers:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        head.append(cell)
    sheet.append(head)
    for row in rows:
        sheet.append(list(row))
    book.save(out)


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def table_file(
    fmt: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str,
    widths: Sequence[int] = (),
) -> IO[bytes]:
    """The table written in ``fmt`` to a temporary file, rewound."""
    out = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - sent, then closed
    if fmt == "xlsx":
        write_xlsx(out, headers, rows, title=title, widths=widths)
    else:
        write_csv(out, headers, rows)
    out.seek(0)
    return out


def download(out: IO[bytes], *, fmt: str, filename: str, ascii_name: str) -> Response:
    """Send the file in chunks as an attachment named ``filename`` (RFC 5987), ``ascii_name``
    for clients that read only the plain name; the file is closed once sent."""
    size = out.seek(0, 2)
    out.seek(0)

    def chunks() -> Iterator[bytes]:
        try:
            while block := out.read(_CHUNK_BYTES):
                yield block
        finally:
            out.close()

    disposition = (
        f"attachment; filename={ascii_name}.{fmt}; filename*=UTF-8''{quote(filename)}.{fmt}"
    )
    return Response(
        chunks(),
        mimetype=MIMETYPES[fmt],
        headers={
            "Content-Disposition": disposition,
            "Content-Length": str(size),
            "Cache-Control": "no-store",
        },
    )
