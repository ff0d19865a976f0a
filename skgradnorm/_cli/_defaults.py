"""The command line's defaults, read from the estimators' source without importing them.

The parser (and ``skgradnorm --help``) must not import torch, yet its options' defaults are
the estimators' own, never copies that could drift: they are read from the source with
:mod:`ast`.
"""

from __future__ import annotations

import ast
import contextlib
import functools
from importlib import resources

__all__ = ["estimator_defaults", "module_constant"]


@functools.cache
def _module_ast(module: str) -> ast.Module:
    *folders, name = module.split(".")
    path = resources.files("skgradnorm").joinpath(*folders, f"{name}.py")
    source = path.read_text(encoding="utf-8")
    return ast.parse(source)


def estimator_defaults(module: str, class_name: str) -> dict:
    """The keyword defaults of ``class_name.__init__`` in ``skgradnorm/<module>.py``
    (``module`` dotted from the package, e.g. ``"_clip._encoder"``).

    Read from the source with :mod:`ast`, not by importing the module, so that the parser
    (and ``skgradnorm --help``) does not import torch; the options' defaults are the
    estimators' own, never copies that could drift. Only literal defaults are returned.
    """
    for node in _module_ast(module).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args
                    pairs = list(zip(args.args[::-1], args.defaults[::-1], strict=False))
                    pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
                    out = {}
                    for arg, default in pairs:
                        if default is not None:
                            with contextlib.suppress(ValueError):
                                out[arg.arg] = ast.literal_eval(default)
                    return out
    raise LookupError(f"no {class_name}.__init__ in skgradnorm/{module}.py")


def module_constant(module: str, name: str):
    """A literal module-level constant of ``skgradnorm/<module>.py``, read without importing."""
    for node in _module_ast(module).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError(f"no constant {name} in skgradnorm/{module}.py")
