"""The house rules, checked on the package's own source (see CONTRIBUTING.md, "The map").

- every import points the way the layout allows (the table ``ALLOWED`` below);
- no import circle, counting imports inside functions too;
- no private name (``_name``) imported from another module;
- no module over 500 lines (functions over 60 statements: ruff's PLR0915, ``make lint``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skgradnorm"

#: The rooms: folders and the top level's public modules, by what they hold.
FOLDERS = ("_utils", "_cluster", "_clip", "_reporting", "_cli", "distributed")

#: Room -> the rooms it may import ("top": the method, the estimators and the public
#: modules at the top level; "base": exceptions and _version).
ALLOWED = {
    "base": set(),
    "_utils": {"base"},
    "_cluster": {"_utils", "base"},
    "vocabulary": {"_utils", "base"},
    "top": {"_cluster", "_utils", "base", "vocabulary"},
    "_clip": {"_utils", "base", "vocabulary"},
    "_reporting": {"_utils", "base", "metrics", "_clip._images"},
    "distributed": {"_clip", "_utils", "base", "vocabulary", "top"},
    "_cli": {"*"},
    "entry": {"*"},
}


def room(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or parts[0] in ("__init__", "__main__"):
        return "entry"
    if parts[0] in FOLDERS:
        return parts[0]
    if parts[0] in ("exceptions", "_version"):
        return "base"
    if parts[0] == "vocabulary":
        return "vocabulary"
    return "top"


def allowed(source: str, target: str) -> bool:
    """Whether ``source`` may import ``target``: same room, an allowed room, or a module
    the table names one by one (``metrics``, ``_clip._images``)."""
    src, dst = room(source), room(target)
    rules = ALLOWED[src]
    if "*" in rules or src == dst or dst in rules:
        return True
    return target in {f"skgradnorm.{m}" for m in rules if m not in ALLOWED}


def _modules():
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        out[name] = (path, is_package)
    return out


MODULES = _modules()
LAZY = {}  # skgradnorm's PEP 562 names -> their modules
for node in ast.walk(ast.parse((PACKAGE / "__init__.py").read_text())):
    if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_LAZY" for t in node.targets):
        LAZY = {k: "skgradnorm" + v for k, v in ast.literal_eval(node.value).items()}


def imports(module: str):
    """``(target_module, imported_name or None, line)`` for every import in ``module``."""
    path, is_package = MODULES[module]
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "skgradnorm":
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = base[: len(base) - node.level + 1]
                target = ".".join(pkg + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "skgradnorm":
                target = node.module
            else:
                continue
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:  # a submodule
                    yield f"{target}.{alias.name}", None, node.lineno
                elif target == "skgradnorm" and alias.name in LAZY:
                    yield LAZY[alias.name], alias.name, node.lineno
                else:
                    yield target, alias.name, node.lineno


def test_every_module_is_found():
    assert {"skgradnorm._cluster._kmeans", "skgradnorm._clip._encoder"} <= set(MODULES)
    assert LAZY["CLIPEncoder"] == "skgradnorm._clip._encoder"


def test_imports_point_the_way_the_layout_allows():
    bad = [
        f"{module}:{line} imports {target} ({room(module)} -> {room(target)})"
        for module in MODULES
        for target, _, line in imports(module)
        if target in MODULES and not allowed(module, target)
    ]
    assert not bad, "\n".join(bad)


def test_no_private_name_crosses_modules():
    bad = [
        f"{module}:{line} imports {name} from {target}"
        for module in MODULES
        for target, name, line in imports(module)
        if name and name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert not bad, "\n".join(bad)


def test_no_import_circle():
    graph = {
        m: {t for t, _, _ in imports(m) if t in MODULES and t != m and t != "skgradnorm"}
        for m in MODULES
    }
    # A package's __init__ that re-exports its modules is not an edge back into them.
    done, stack, circles = set(), [], []

    def visit(node):
        if node in stack:
            circles.append(stack[stack.index(node) :] + [node])
            return
        if node in done:
            return
        stack.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        stack.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module)
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_500_lines(module):
    path, _ = MODULES[module]
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert n_lines <= 500, f"{path.relative_to(PACKAGE.parent)} has {n_lines} lines"


def test_the_rule_catches_a_forbidden_arrow():
    """The checker itself: the arrows the table forbids are refused."""
    assert not allowed("skgradnorm._cluster._kmeans", "skgradnorm._spherical_kmeans")
    assert not allowed("skgradnorm._selector", "skgradnorm._clip._encoder")
    assert not allowed("skgradnorm.distributed._embed", "skgradnorm._cli._inputs")
    assert not allowed("skgradnorm._reporting._outputs", "skgradnorm._clip._encoder")
    assert allowed("skgradnorm._reporting._thumbnails", "skgradnorm._clip._images")
    assert allowed("skgradnorm._cli._commands", "skgradnorm._clip._encoder")
