"""The structure, drawn from the imports themselves (DESIGN §3; README "Layout").

- ``crypto/`` imports neither ``signing`` nor Flask: an auditor can vendor it.
- ``signing/ledger/`` imports no Flask: the domain does not depend on the web.
- Only the ledger (and the schema's own migrations) touches the models: views
  and the CLI go through it.
- No import cycle between modules.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("signing", "crypto")
WEB_FRAMEWORKS = ("flask", "flask_wtf", "flask_babel", "flask_limiter", "werkzeug", "wtforms", "jinja2")
# The schema's owners: the models themselves, and migrations, which must not use them for rows.
MODEL_USERS_OUTSIDE_LEDGER = {"signing.models", "signing.migrations"}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules():
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def imports_of(name, path):
    """Absolute names of every module ``name`` imports, at any depth in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph():
    known = modules()
    return {
        name: {imp for imp in imports_of(name, path) if imp in known and imp != name} for name, path in known.items()
    }


@pytest.mark.parametrize(
    ("prefix", "forbidden"),
    [("crypto", WEB_FRAMEWORKS + ("signing", "peewee")), ("signing.ledger", WEB_FRAMEWORKS)],
)
def test_lower_layers_do_not_import_upper_ones(prefix, forbidden):
    offenders = [
        f"{name} imports {imported}"
        for name, path in modules().items()
        if name == prefix or name.startswith(prefix + ".")
        for imported in imports_of(name, path)
        if imported.split(".")[0] in forbidden or imported == "signing" or imported.startswith(forbidden)
    ]
    assert not offenders, offenders


def test_only_the_ledger_touches_the_models():
    offenders = [
        name
        for name, path in modules().items()
        if "signing.models" in imports_of(name, path)
        and not name.startswith("signing.ledger")
        and name not in MODEL_USERS_OUTSIDE_LEDGER
    ]
    assert not offenders, f"query through signing.ledger instead: {offenders}"


def test_no_import_cycles():
    edges = graph()
    # A package's __init__ re-exporting its own modules is not a cycle of meaning.
    for name in list(edges):
        edges[name] = {imp for imp in edges[name] if not name.startswith(imp + ".")}
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not cycles, cycles


def test_the_checks_see_the_code():
    # Guards the checks above against passing vacuously (a wrong ROOT or parser).
    edges = graph()
    assert "signing.ledger.online" in edges and "signing.web.public" in edges
    assert "signing.ledger" in edges["signing.web.public"]


def test_every_package_is_installed():
    # A package missing from setup.cfg works in a checkout and breaks `pip install .`.
    from configparser import ConfigParser

    config = ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = {name.strip() for name in config["options"]["packages"].split(",")}
    found = {module_name(path.parent) for package in PACKAGES for path in (ROOT / package).rglob("__init__.py")}
    assert found <= listed, f"add to setup.cfg [options] packages: {sorted(found - listed)}"
