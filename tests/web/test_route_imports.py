"""Route modules stand alone: none imports another route module, and only the app factory
imports them (URL helpers and shared views live in ``web/_urls.py`` and ``web/_sync_view.py``),
so no import cycle can form between routes and the composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
ROUTES = sorted(p for p in (WEB / "routes").glob("*.py") if p.name != "__init__.py")
ROUTE_NAMES = {p.stem for p in ROUTES}
#: The one module allowed to import route modules: it registers their blueprints.
APP_FACTORY = WEB / "_app.py"


def route_imports(path: Path) -> set[str]:
    """Route modules ``path`` imports anywhere (module level or inside functions)."""
    in_routes = path.parent.name == "routes"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[:2] == ["web", "routes"] and len(parts) > 2:
                    found.add(parts[2])
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        if node.level == 0:
            parts = module.split(".")
            if parts[:2] != ["web", "routes"]:
                continue
            base = parts[2:]
        elif in_routes and node.level == 1:  # ``from .x import`` inside web/routes/
            base = module.split(".") if module else []
        elif not in_routes and node.level == 1 and module.split(".")[0] == "routes":
            base = module.split(".")[1:]  # ``from .routes.x import`` inside web/
        else:
            continue
        if base:
            found.add(base[0])
        else:  # ``from . import x`` / ``from .routes import x``
            found.update(alias.name for alias in node.names)
    return found & ROUTE_NAMES


def test_the_route_modules_are_found() -> None:
    assert {"marketplace", "yclients", "sync", "health"} <= ROUTE_NAMES


@pytest.mark.parametrize("path", ROUTES, ids=lambda p: p.stem)
def test_no_route_module_imports_another(path: Path) -> None:
    assert route_imports(path) == set()


def test_only_the_app_factory_imports_route_modules() -> None:
    importers = {
        str(path.relative_to(WEB))
        for path in WEB.rglob("*.py")
        if path.parent.name != "routes" and route_imports(path)
    }
    assert importers == {APP_FACTORY.name}


def test_the_checker_sees_each_import_form(tmp_path: Path) -> None:
    routes = tmp_path / "routes"
    routes.mkdir()
    forms = {
        "a": "from .marketplace import connect_url\n",
        "b": "def f():\n    from .yclients import x\n",
        "c": "from . import sync\n",
        "d": "import web.routes.health\n",
        "e": "from web.routes.marketplace import y\n",
    }
    for name, text in forms.items():
        (routes / f"{name}.py").write_text(text, encoding="utf-8")
        assert route_imports(routes / f"{name}.py"), name
    server = tmp_path / "server.py"
    server.write_text("from .routes.marketplace import connect_url\n", encoding="utf-8")
    assert route_imports(server) == {"marketplace"}
    (routes / "ok.py").write_text("from .._urls import connect_url\n", encoding="utf-8")
    assert route_imports(routes / "ok.py") == set()
