"""Profile one path in-process with pyinstrument, on a database a bench run left behind.

    python -m bench.profile status  [--db sqlite|postgresql] [-n 500]
    python -m bench.profile urgent  [--db sqlite|postgresql] [-n 200]
    python -m bench.profile claim   [--db sqlite|postgresql] [-n 300]
    python -m bench.profile floor

``--statements`` prints, instead, every statement one request sends to the database (pool
pings, BEGIN and COMMIT included): the round trips a request costs.

Requests go through the Flask test client (the same code gunicorn runs, minus the HTTP
server); the report shows where the CPU time of one request goes. For a live gunicorn worker
use py-spy instead: ``py-spy record -o prof.svg --pid <worker pid>`` during a bench run.
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from typing import Any

from pyinstrument import Profiler
from sqlalchemy import event, select

from bench.run import WORK
from bench.seed import Seeder
from server.app import create_app
from server.cases.models import Case
from server.session import database


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("path", choices=("floor", "status", "urgent", "claim"))
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("-n", type=int, default=300)
    p.add_argument("--html", help="also write an HTML report here")
    p.add_argument("--statements", action="store_true", help="list one request's statements")
    args = p.parse_args()
    if args.db == "sqlite":
        url = f"sqlite:///{WORK / 'sqlite' / 'bench.db'}"
    else:
        url = os.environ["BENCH_DATABASE_URL"]
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "profile-" + "k" * 40, "ACCESS_TOKEN_TTL": 7200}
    )
    engine = database(app).engine
    seeder = Seeder(app, engine)
    client = app.test_client()
    reqs: list[tuple[str, str, dict, dict | None]] = []
    if args.path == "floor":
        reqs = [("GET", "/healthz", {}, None)] * args.n
    elif args.path == "status":
        people = seeder.residents(50)
        ids = seeder.status_cases(people)
        for k in range(args.n):
            person, case_id = people[k % 50], ids[k % 50]
            hdr = {"Authorization": f"Bearer {person.token}"}
            reqs.append(("GET", f"/api/v1/cases/{case_id}", hdr, None))
    elif args.path == "claim":
        township = seeder.townships[0]
        people = seeder.residents(50)
        seeder.queue(township, args.n + 10, people)
        officer = seeder.duty_officers(township, 1)[0]
        hdr = {"Authorization": f"Bearer {officer.token}"}
        reqs = [("POST", f"/api/v1/townships/{township}/queue/claim", hdr, None)] * args.n
    else:
        seeder.staff()
        people = seeder.residents(args.n)
        for person in people:
            hdr = {"Authorization": f"Bearer {person.token}", "Idempotency-Key": uuid.uuid4().hex}
            body = {"township_code": random.choice(seeder.townships), "description": "急需帮助"}
            reqs.append(("POST", "/api/v1/urgent-requests", hdr, body))
    # Warm up (gazetteer, first connections), then profile.
    for method, path, hdr, body in reqs[:5]:
        client.open(path, method=method, headers=hdr, json=body)
    reqs = reqs[5:]
    if args.statements:
        _print_statements(engine, client, reqs[0])
        return
    profiler = Profiler(interval=0.0005)
    t0 = time.perf_counter()
    profiler.start()
    codes: dict[int, int] = {}
    for method, path, hdr, body in reqs:
        code = client.open(path, method=method, headers=hdr, json=body).status_code
        codes[code] = codes.get(code, 0) + 1
    profiler.stop()
    elapsed = time.perf_counter() - t0
    print(
        f"{len(reqs)} requests in {elapsed:.2f} s: {1000 * elapsed / len(reqs):.2f} ms each, "
        f"status codes {codes}"
    )
    print(
        profiler.output_text(
            unicode=True, color=False, show_all=bool(os.environ.get("PROFILE_ALL"))
        )
    )
    if args.html:
        with open(args.html, "w") as fh:
            fh.write(profiler.output_html())
    with engine.connect() as conn:
        conn.execute(select(Case.id).limit(1))


def _print_statements(engine: Any, client: Any, req: tuple[str, str, dict, dict | None]) -> None:
    lines: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        lines.append(" ".join(statement.split())[:160])

    def on_begin(conn: Any) -> None:
        lines.append("BEGIN")

    def on_commit(conn: Any) -> None:
        lines.append("COMMIT")

    def on_rollback(conn: Any) -> None:
        lines.append("ROLLBACK")

    def on_checkout(*_: Any) -> None:
        lines.append("(pool checkout)")

    hooks = {
        "before_cursor_execute": on_execute,
        "begin": on_begin,
        "commit": on_commit,
        "rollback": on_rollback,
    }
    for name, fn in hooks.items():
        event.listen(engine, name, fn)
    event.listen(engine.pool, "checkout", on_checkout)
    method, path, hdr, body = req
    code = client.open(path, method=method, headers=hdr, json=body).status_code
    print(f"{method} {path} -> {code}: {sum(1 for x in lines if not x.startswith('('))} statements")
    for line in lines:
        print("  " + line)


if __name__ == "__main__":
    main()
