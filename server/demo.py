"""``flask --app wsgi demo seed``: demo data for 日照市 (3711)."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup
from sqlalchemy import select

from server.accounts.models import Account
from server.accounts.passwords import generate_password
from server.accounts.service import create_staff
from server.cases.money import seed_demo_standards
from server.db import utcnow
from server.divisions.load import load_divisions
from server.divisions.models import Division
from server.roster.service import add_shift
from server.session import database

demo_cli = AppGroup("demo", help="Demo data.")

CITY = "3711"
# Demo staff get phones from the 170 block (virtual operators) so an urgent tap pages someone;
# with the default console SMS backend nothing is ever sent to them.
DEMO_PHONE_PREFIX = "+86170"
DEMO_ROSTER = dt.timedelta(days=30)


def _demo_phone(n: int) -> str:
    return f"{DEMO_PHONE_PREFIX}{n:08d}"


@demo_cli.command("seed")
def seed() -> None:
    """Divisions, staff for every 日照市 township, operators, supervisors, an admin; duty
    officers and supervisors on the roster for the next 30 days.

    Prints the generated credentials once; running it again creates only what is missing.
    """
    created: list[tuple[str, str, str, str]] = []
    with database().new_session() as session, session.begin():
        if session.get(Division, "371102004") is None:
            load_divisions(session, prefix=CITY)
        townships = session.scalars(
            select(Division)
            .where(Division.level == "township", Division.code.startswith(CITY))
            .order_by(Division.code)
        ).all()
        counties = session.scalars(
            select(Division)
            .where(Division.level == "county", Division.code.startswith(CITY))
            .order_by(Division.code)
        ).all()
        wanted = [
            ("admin", "admin", CITY, "系统管理员"),
            ("operator", "op12349", CITY, "12349 坐席"),
        ]
        wanted += [("supervisor", f"sup{c.code}", c.code, f"{c.name}民政局") for c in counties]
        wanted += [("duty", f"duty{t.code}", t.code, f"{t.name}值班") for t in townships]
        wanted += [
            ("grid_worker", f"grid{t.code}", t.code, f"{t.name}网格员") for t in townships[:3]
        ]
        existing = set(session.scalars(select(Account.username)))
        now = utcnow()
        for n, (role, username, region, name) in enumerate(wanted, start=1):
            if username in existing:
                continue
            password = generate_password()
            account = create_staff(
                session,
                username=username,
                password=password,
                role=role,
                region_code=region,
                phone=_demo_phone(n),
                name=name,
            )
            if role in ("duty", "supervisor"):
                add_shift(session, account=account, starts_at=now, ends_at=now + DEMO_ROSTER)
            created.append((role, username, password, region))
        seed_demo_standards(session, city=CITY)
    if not created:
        click.echo("demo data already present; credentials were printed when first created")
        return
    click.echo("Demo credentials (shown once):")
    for role, username, password, region in created:
        click.echo(f"  {role:<12} {username:<20} {password:<14} {region}")
