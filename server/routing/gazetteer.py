"""The deployment area's gazetteer, built once per process from the divisions table."""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.divisions.models import Division
from server.routing.rules import Gazetteer, build_gazetteer

_cache: dict[tuple[str, str], Gazetteer] = {}
_lock = threading.Lock()


def gazetteer(session: Session, city_code: str) -> Gazetteer:
    """The cached gazetteer of ``city_code`` (division data changes only with a release)."""
    key = (str(session.get_bind().engine.url), city_code)
    gaz = _cache.get(key)
    if gaz is None or not gaz.names:
        rows = session.execute(
            select(Division.code, Division.name, Division.level).where(
                Division.code.startswith(city_code)
            )
        ).all()
        gaz = build_gazetteer(city_code, [tuple(r) for r in rows])
        with _lock:
            _cache[key] = gaz
    return gaz
