"""``wsgi:app`` plus two bench-only routes: the framework work of a tap and of a status read, no
application code.

``POST /bench/stack-tap`` takes exactly what ``POST /api/v1/urgent-requests`` takes, through
the stack the design prescribes (gunicorn, Flask, flask-smorest with webargs and the real
marshmallow schemas of the tap's headers and body, the bearer token verified by PyJWT), then
sends the SQL of one real tap — captured by ``bench.paths.stack``, in the file named by
``BENCH_STACK_SCRIPT`` — by the raw driver on a pooled connection, one transaction (on
SQLite in the app's queue for the write lock), and answers 201 with the new case's id and
number. What Aidline's own code adds to a tap (intake's rules, routing, the rows it builds,
SQLAlchemy's session, the full answer) is absent, so this route's rate is the best any tap
can do with that stack and those statements on this machine. ``GET /bench/stack-read/{id}``
does the same for the resident's status read (``BENCH_STACK_READ``): the token verified, the
read's captured SQL by the raw driver outside a transaction, and a two-field answer (the case
id and the number of rows): the body is not built, so this route's rate bounds any status
read on that stack, however cheaply it builds its answer. Served only by ``make bench``.
"""

from __future__ import annotations

import os
import pickle
import uuid
from typing import Any

from flask import current_app
from flask.views import MethodView

from bench.replay import Replay
from server.accounts.tokens import request_claims
from server.api import Blueprint
from server.cases.schemas import IdempotencyHeaderSchema, UrgentRequestCreateSchema
from server.errors import Forbidden, NotFound
from server.session import database
from wsgi import app

blp = Blueprint("bench", __name__, url_prefix="/bench", description="bench only")

with open(os.environ["BENCH_STACK_SCRIPT"], "rb") as fh:
    _REPLAY = Replay(*pickle.load(fh))
with open(os.environ["BENCH_STACK_READ"], "rb") as fh:
    _READ = Replay(*pickle.load(fh))


@blp.route("/stack-tap")
class StackTap(MethodView):
    @blp.arguments(IdempotencyHeaderSchema(), location="headers", as_kwargs=True)
    @blp.arguments(UrgentRequestCreateSchema())
    @blp.response(201)
    def post(self, data: dict[str, Any], idempotency_key: str | None = None):
        """The tap's framework work and its SQL, nothing else."""
        claims = request_claims()  # PyJWT: signature, expiry, claims
        if claims.get("role") != "resident":
            raise Forbidden()
        case_id = uuid.uuid4()
        case_no = f"S{case_id.hex[:20]}"
        new: dict[str, Any] = {
            "resident": int(claims["sub"]),
            "session": claims["sid"],
            "case_id": case_id,
            "case_no": case_no,
            "key": idempotency_key,
            "township": data["township_code"],
        }
        db = database(current_app)
        # SQLite: one writer at a time, queued as the app queues its write requests.
        if db.writers is not None:
            db.writers.acquire()
        conn = db.engine.raw_connection()
        try:
            cur = conn.cursor()
            if db.writers is not None:
                cur.execute("BEGIN IMMEDIATE")
            _REPLAY.send(cur, new)
            conn.commit()
        finally:
            conn.close()
            if db.writers is not None:
                db.writers.release()
        return {"id": str(case_id), "case_no": case_no, "status": "submitted", "urgent": True}


@blp.route("/stack-read/<uuid:case_id>")
class StackRead(MethodView):
    def get(self, case_id: uuid.UUID):
        """The status read's framework work and its SQL, nothing else: a two-field answer."""
        claims = request_claims()
        if claims.get("role") != "resident":
            raise Forbidden()
        engine = database(current_app).engine
        postgres = engine.dialect.name == "postgresql"
        conn = engine.raw_connection()
        try:
            if postgres:  # one statement, no transaction: as the app's read
                conn.driver_connection.autocommit = True
            new = {"resident": int(claims["sub"]), "session": claims["sid"], "case_id": case_id}
            rows = _READ.send(conn.cursor(), new)
            if postgres:
                conn.driver_connection.autocommit = False
        except BaseException:
            conn.invalidate()  # not back to the pool in autocommit, under the taps' transactions
            raise
        finally:
            conn.close()
        if not rows:
            raise NotFound()
        # Not the rows themselves: as JSON they cost more than the app's whole answer (raw
        # datetimes and UUIDs through the encoder's fallback), and a ceiling must not.
        return current_app.json.response({"id": str(case_id), "rows": len(rows)})


app.extensions["aidline.api"].register_blueprint(blp)
