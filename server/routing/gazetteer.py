"""The deployment area's gazetteer, built once per process from the divisions table."""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from server.divisions.models import Division
from server.routing.rules import Gazetteer, build_gazetteer

_cache: dict[tuple[str, str], Gazetteer] = {}
_lock = threading.Lock()
# Rendering an engine's URL costs more than the look-up it keys: once per engine.
_urls: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def gazetteer(session: Session | Engine | Connection, city_code: str) -> Gazetteer:
    """The cached gazetteer of ``city_code`` (division data changes only with a release),
    through a session or straight on its bind."""
    bind = session.get_bind() if isinstance(session, Session) else session
    engine = bind.engine
    url = _urls.get(engine)
    if url is None:
        url = _urls[engine] = str(engine.url)
    gaz = _cache.get((url, city_code))
    if gaz is None or not gaz.names:
        query = select(Division.code, Division.name, Division.level).where(
            or_(Division.code.startswith(city_code), Division.level.in_(("province", "city")))
        )
        if isinstance(session, Engine):
            with session.connect() as conn:
                rows = conn.execute(query).all()
        else:
            # Through the caller's transaction: on SQLite a second connection would queue
            # behind the write lock that transaction may hold, its own, until the busy timeout.
            rows = session.execute(query).all()
        gaz = build_gazetteer(city_code, [tuple(r) for r in rows])
        with _lock:
            _cache[(url, city_code)] = gaz
    return gaz
