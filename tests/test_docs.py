"""The development API docs load nothing from outside the app (intranets block CDNs)."""

from __future__ import annotations

import re
from urllib.parse import urljoin

from server.app import create_app

SWAGGER = "/api/v1/docs/swagger"


def test_swagger_ui_references_only_files_the_app_serves(app, client):
    page = client.get(SWAGGER)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(urls) >= 3, html  # the CSS, the bundle and the preset
    assert "http" not in html.lower() and "//" not in "".join(urls), urls
    for url in urls:
        assert url.startswith("/"), url
        with client.get(urljoin(SWAGGER, url)) as resp:  # closes the served file
            assert resp.status_code == 200, url
            assert resp.data
            assert resp.mimetype in ("text/css", "text/javascript", "application/javascript")
    # The spec the page loads is the app's own.
    spec_url = re.search(r'url: "([^"]+)"', html).group(1)
    assert client.get(urljoin(SWAGGER, spec_url)).status_code == 200


def test_swagger_ui_serves_only_its_own_assets(client):
    resp = client.get("/api/v1/docs/swagger-ui/index.html")
    assert resp.status_code == 404 and resp.get_json()["code"] == "not_found"
    assert client.get("/api/v1/docs/swagger-ui/..%2Fpyproject.toml").status_code == 404
    assert client.get("/api/v1/docs/redoc").status_code == 404


def test_no_docs_and_no_assets_when_docs_are_off(database_url):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
            "SERVE_DOCS": False,
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    client = app.test_client()
    assert client.get(SWAGGER).status_code == 404
    assert client.get("/api/v1/docs/swagger-ui/swagger-ui-bundle.js").status_code == 404
