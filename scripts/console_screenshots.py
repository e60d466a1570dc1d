"""Regenerate the console's screenshots under docs/console/ (``make screenshots``).

A throw-away SQLite database with a township queue (urgent requests at different ages,
applications), one urgent case worked through the services (tapped, claimed, a note, a
document) and a county's month of cases, the app on a free port, Debian's Chromium: the queue
page, that case's page and the hotline form (a caller with an open case, an address typed) at
1280 px and on a 375 x 667 phone; the supervisor's dashboard, roster and export page at
1280 px.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import tempfile
import threading
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.accounts.models import Account  # noqa: E402
from server.accounts.passwords import hash_password  # noqa: E402
from server.app import create_app  # noqa: E402
from server.cases import actions, claim, intake  # noqa: E402
from server.db import utcnow  # noqa: E402
from server.divisions.load import load_divisions  # noqa: E402
from server.documents import service as document_service  # noqa: E402
from server.migrate import alembic_config  # noqa: E402
from server.session import database  # noqa: E402
from tests import factories as f  # noqa: E402
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

OUT = ROOT / "docs" / "console"
TOWNSHIP = "371102004"
COUNTY = "371102"
PASSWORD = "screenshot-password"
CALLER = "13812345678"


def seed(app) -> str:
    """The queue and the case shown on the case page; returns that case's id."""
    now = utcnow()
    with database(app).new_session() as s, s.begin():
        load_divisions(s, prefix="3711")
        duty = Account(
            role="duty",
            username="duty371102004",
            name="王海燕",
            password_hash=hash_password(PASSWORD),
            region_code=TOWNSHIP,
            phone="+8617000000004",
        )
        operator = Account(
            role="operator",
            username="op12349",
            password_hash=hash_password(PASSWORD),
            region_code="3711",
        )
        s.add_all([duty, operator])
        s.flush()
        caller = f.resident(s, phone="+86" + CALLER)
        f.case(
            s,
            resident_account=caller,
            township=TOWNSHIP,
            subject_phone=caller.phone,
            channel="hotline",
            created_at=now - dt.timedelta(days=2),
            urgent=False,
            aid_type="medical",
            address="秦楼街道东关社区",
            description="住院费用负担重，申请医疗救助",
        )
        shown = worked_case(s, duty, now)
        urgent = [
            (3, "秦楼街道海曲东路 18 号", "老人独居，突发疾病无钱就医"),
            (13, "秦楼街道东关社区", "家中失火，生活用品全部烧毁"),
            (22 * 60 + 30, "秦楼街道安泰社区 5 号楼", "务工受伤，无法支付医药费"),
        ]
        for minutes, address, text in urgent:
            f.case(
                s,
                township=TOWNSHIP,
                created_at=now - dt.timedelta(minutes=minutes),
                address=address,
                description=text,
            )
        f.case(
            s,
            township=TOWNSHIP,
            status="claimed",
            claimed_by_id=duty.id,
            claimed_at=now - dt.timedelta(minutes=30),
            created_at=now - dt.timedelta(minutes=50),
            address="秦楼街道营子社区",
            description="子女上学费用困难",
            channel="hotline",
        )
        for days, kind in ((2, "temporary_expenditure"), (5, "medical")):
            f.case(
                s,
                township=TOWNSHIP,
                urgent=False,
                aid_type=kind if kind in _aid_types() else None,
                created_at=now - dt.timedelta(days=days),
                address="秦楼街道北京路社区",
                description="申请临时救助",
            )
    return shown


def worked_case(s, duty: Account, now: dt.datetime) -> str:
    """An urgent tap 22 h 40 min ago, claimed, with a note and the application on file."""
    f.on_duty(s, duty)
    f.aid_standard(s, county=TOWNSHIP[:6])
    resident = Account(role="resident", phone="+8613912345678", name="李桂兰")
    s.add(resident)
    s.flush()
    tapped = now - dt.timedelta(hours=22, minutes=40)
    case = intake.submit_urgent(
        s,
        resident=resident,
        actor=resident,
        need=intake.Need(
            channel="app",
            township_code=TOWNSHIP,
            address="秦楼街道海曲东路 26 号 3 单元 502 室",
            description="独居老人夜间摔伤住院，无力支付押金",
            contact_phone="+8613712345678",
        ),
        now=tapped,
    ).case
    claim.claim_next(s, actor=duty, township_code=TOWNSHIP, now=tapped + dt.timedelta(minutes=6))
    actions.perform(
        s,
        actor=duty,
        case_id=case.id,
        action="note",
        args={"message": "已电话联系，老人在市人民医院急诊，儿子在外地务工。"},
        now=now,
    )
    scan = io.BytesIO()
    Image.new("RGB", (640, 480), (250, 250, 245)).save(scan, "PNG")
    document_service.upload(
        s,
        actor=duty,
        case_id=case.id,
        kind="application",
        clean=document_service.checked_file(scan.getvalue()),
        note="纸质件 2026-秦楼-0317",
        now=now,
    )
    return str(case.id)


_OFFICERS = (
    "王建国",
    "李秀英",
    "张伟",
    "刘洋",
    "陈静",
    "杨磊",
    "赵敏",
    "黄涛",
    "周婷",
    "吴刚",
    "孙丽",
)


def seed_county(app) -> None:
    """A month of urgent cases and applications across 东港区, a supervisor, duty officers on
    tonight's roster in all but two townships."""
    import random

    from server.divisions.models import Division
    from server.roster.models import DutyShift
    from server.roster.service import night_of

    rng = random.Random(3)
    now = utcnow()
    start, end = night_of(now)
    with database(app).new_session() as s, s.begin():
        s.add(
            Account(
                role="supervisor",
                username="sup371102",
                password_hash=hash_password(PASSWORD),
                region_code=COUNTY,
            )
        )
        townships = s.scalars(
            select(Division.code).where(Division.parent_code == COUNTY).order_by(Division.code)
        ).all()
        for index, code in enumerate(townships):
            if code != TOWNSHIP:
                officer = Account(
                    role="duty",
                    username=f"duty{code}",
                    name=_OFFICERS[index % len(_OFFICERS)],
                    region_code=code,
                )
                s.add(officer)
                s.flush()
                # The week's nights; two townships have nobody tonight.
                monday = start - dt.timedelta(days=start.weekday())
                for day in range(7):
                    night = monday + dt.timedelta(days=day)
                    if night == start and index in (2, 7):
                        continue
                    if index in (2, 7) and day % 2:
                        continue
                    s.add(
                        DutyShift(
                            account_id=officer.id,
                            starts_at=night,
                            ends_at=night + (end - start),
                        )
                    )
            for _ in range(rng.randrange(4, 18)):
                created = now - dt.timedelta(hours=rng.randrange(2, 30 * 24))
                hours = rng.choice((1, 2, 3, 5, 8, 12, 20, 30, None))
                fields = {}
                if hours is not None and created + dt.timedelta(hours=hours) < now:
                    fields = {"status": "paid", "paid_at": created + dt.timedelta(hours=hours)}
                f.case(s, township=code, created_at=created, **fields)
            for _ in range(rng.randrange(0, 4)):
                created = now - dt.timedelta(days=rng.randrange(1, 50))
                f.case(s, township=code, urgent=False, created_at=created)


def _aid_types() -> dict[str, str]:
    from server.cases.aid_types import AID_TYPES

    return AID_TYPES


def hotline(browser, base: str, name: str, size: tuple[int, int]) -> None:
    """The operator's form for a caller with an open case, an address typed."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/console/login")
    page.fill("input[name=username]", "op12349")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.goto(f"{base}/console/hotline?phone={CALLER}")
    page.check("#urgent")
    page.fill("#address", "秦楼街道海曲东路 18 号")
    page.fill("textarea[name=description]", "老人独居，突发疾病无钱就医")
    page.fill("input[name=name]", "王大爷")
    page.wait_for_function(
        "document.querySelector('#route-preview').textContent.startsWith('系统建议')"
    )
    shoot(page, f"hotline-{name}.png")
    context.close()


def shoot(page, name: str) -> None:
    path = OUT / name
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    from alembic import command

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/screens.db"
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "screenshots-only-" + "x" * 32})
        with database(app).engine.connect() as conn:
            command.upgrade(alembic_config(url, connection=conn), "head")
            conn.commit()
        with app.app_context():
            case_id = seed(app)
            seed_county(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for name, size in (("desktop", (1280, 800)), ("phone", (375, 667))):
                    context = browser.new_context(
                        viewport={"width": size[0], "height": size[1]}, locale="zh-CN"
                    )
                    page = context.new_page()
                    page.goto(f"{base}/console/login")
                    page.fill("input[name=username]", "duty371102004")
                    page.fill("input[name=password]", PASSWORD)
                    page.click("main button[type=submit]")
                    page.wait_for_selector(".lane-urgent")
                    page.wait_for_timeout(1200)  # countdowns ticked, first poll done
                    shoot(page, f"queue-{name}.png")
                    page.goto(f"{base}/console/cases/{case_id}")
                    page.wait_for_selector(".case-clocks .countdown.red")
                    shoot(page, f"case-{name}.png")
                    context.close()
                    hotline(browser, base, name, size)
                _supervisor_pages(browser, base)
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
            database(app).engine.dispose()


def _supervisor_pages(browser, base: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/console/login")
    page.fill("input[name=username]", "sup371102")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    for name, path, ready in (
        ("dashboard", "/console/dashboard", "#figures"),
        ("roster", "/console/roster", "#roster"),
        ("exports", "/console/exports", "#ledger-form"),
    ):
        page.goto(f"{base}{path}")
        page.wait_for_selector(ready)
        out = OUT / f"{name}-desktop.png"
        page.screenshot(path=str(out), full_page=True)
        print(f"wrote {out.relative_to(ROOT)}")
    context.close()


if __name__ == "__main__":
    main()
