"""``/docs``: the API reference in a browser — our own page (``web/static/docs.html`` with
``docs.js`` and ``docs.css``), which reads ``/openapi.json`` and draws every path, method,
parameter and schema. Nothing comes from another origin, so the pages' CSP holds."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app

blueprint = Blueprint("docs", __name__)


@blueprint.get("/docs")
async def docs() -> Any:
    response = await current_app.send_static_file("docs.html")
    response.mimetype = "text/html"
    return response
