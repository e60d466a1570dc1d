"""The development API docs' Swagger UI, served from the ``swagger-ui-bundle`` package.

Government intranets block public CDNs, so the page flask-smorest renders must load its
JavaScript and CSS from this app. Only served when the docs are (``SERVE_DOCS``).
"""

from __future__ import annotations

from flask import Blueprint, Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from server.errors import NotFound

DOCS_PREFIX = "/api/v1/docs"
SWAGGER_UI_ASSETS_URL = f"{DOCS_PREFIX}/swagger-ui/"
# What flask-smorest's swagger_ui.html references, and the icons; nothing else of the bundle
# (its demo index.html points at the public petstore).
SWAGGER_UI_ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-16x16.png",
        "favicon-32x32.png",
    }
)

blp = Blueprint("swagger_ui_assets", __name__)


@blp.get(f"{SWAGGER_UI_ASSETS_URL}<string:filename>")
def swagger_ui_asset(filename: str):
    """A file of the Swagger UI bundle."""
    if filename not in SWAGGER_UI_ASSETS:
        raise NotFound("文件不存在。", message_en="No such file.")
    return send_from_directory(swagger_ui_path, filename, max_age=86400)


def init_app(app: Flask) -> None:
    """Serve the Swagger UI's files when the docs are served."""
    if app.config["SERVE_DOCS"]:
        app.register_blueprint(blp)
