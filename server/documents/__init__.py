"""Case documents: files stored behind one interface (filesystem or S3-compatible), checked
and cleaned on the way in, the per-aid-type checklist that ``close`` and the paperwork clock
follow, the resident's signed commitment (承诺制), and the retention purge."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Delete the stored files of uploads whose transaction does not commit."""
    from server.documents import service

    service.init_app(app)
