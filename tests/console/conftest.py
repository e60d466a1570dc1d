"""Browser tests of the console: the real app on a free port, Debian's Chromium via Playwright.

One browser per test session, a fresh context (cookies, storage) per test. A failing test
leaves a screenshot and the page's HTML in ``test-artifacts/console/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.accounts.models import Account
from server.accounts.passwords import hash_password
from server.session import database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
PASSWORD = "duty-password-42"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name.replace("/", "_")
        for p in context.pages:
            index = context.pages.index(p)
            try:
                p.screenshot(path=str(ARTIFACTS / f"{name}-{index}.png"), full_page=True)
                (ARTIFACTS / f"{name}-{index}.html").write_text(p.content(), encoding="utf-8")
            except Exception as exc:  # noqa: BLE001 - the artefact is a courtesy
                print(f"could not save artefacts of {name}: {exc}")
    context.close()


def add(app: Any, *rows: Any) -> None:
    """Commit ``rows`` and detach them (their ids stay readable)."""
    with database(app).new_session() as s, s.begin():
        s.add_all(rows)
        s.flush()
        for row in rows:
            s.expunge(row)


def staff(app: Any, username: str, region: str, role: str = "duty", **fields: Any) -> Account:
    account = Account(
        role=role,
        username=username,
        password_hash=hash_password(fields.pop("password", PASSWORD)),
        region_code=region,
        **fields,
    )
    add(app, account)
    return account


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
