"""Import helpers for optional heavy dependencies (open_clip is imported lazily, on first use).

The torchvision guard
---------------------
A CUDA build of torchvision next to a CPU-only build of torch (a common result of
``pip install`` letting different packages pick their own wheels) makes
``import torchvision``, and hence ``import open_clip``, fail with::

    RuntimeError: operator torchvision::nms does not exist

The failing module is ``torchvision._meta_registrations``: it registers "fake" (meta)
kernels for torchvision's compiled operators (``nms``, ``roi_align``...), which do not exist
because the compiled extension does not match torch. Those registrations only matter for
``torchvision.ops`` under ``torch.compile``/meta tensors; the image transforms that CLIP
preprocessing needs do not use them. :func:`import_open_clip` therefore retries the import
with an empty module standing in for ``torchvision._meta_registrations`` -- but ONLY after
the import has failed with exactly that error, so it changes nothing where torchvision
imports fine. ``torchvision.ops`` stays unusable in that environment (as it was before).
"""

from __future__ import annotations

import importlib
import logging
import sys
import types

__all__ = ["import_open_clip"]

logger = logging.getLogger(__name__)

_GUARDED_MODULE = "torchvision._meta_registrations"


def is_torchvision_operator_error(exc: BaseException) -> bool:
    """True for torch's "operator torchvision::<op> does not exist" RuntimeError."""
    msg = str(exc)
    return isinstance(exc, RuntimeError) and "torchvision::" in msg and "does not exist" in msg


def install_torchvision_guard() -> None:
    """Put an empty stand-in for ``torchvision._meta_registrations`` into ``sys.modules``.

    It also forgets the torchvision/open_clip/timm modules that the failed import left half
    initialised, so that the second import starts clean.
    """
    for name in list(sys.modules):
        if name.split(".", 1)[0] in ("torchvision", "open_clip", "timm"):
            del sys.modules[name]
    stub = types.ModuleType(_GUARDED_MODULE)
    stub.__doc__ = (
        "Empty stand-in installed by skgradnorm._utils._compat: the real module fails to import "
        "when a CUDA build of torchvision runs on a CPU build of torch."
    )
    sys.modules[_GUARDED_MODULE] = stub


def import_open_clip(*, importer=importlib.import_module, guard=install_torchvision_guard):
    """Import and return the ``open_clip`` module.

    The import is done normally. Only if it fails with torch's
    ``RuntimeError: operator torchvision::... does not exist`` (a CUDA torchvision next to a
    CPU torch) is the guard described in this module's docstring installed (logged at INFO
    level on the ``skgradnorm._utils._compat`` logger) and the import tried once more. Any
    other error propagates unchanged.

    Parameters
    ----------
    importer : callable, default=importlib.import_module
        Imports a module by name (the tests pass one that fails as a mismatched build does).
    guard : callable, default=install_torchvision_guard
        Installs the guard.

    Returns
    -------
    module
        The ``open_clip`` module.
    """
    try:
        open_clip = importer("open_clip")
    except RuntimeError as exc:
        if not is_torchvision_operator_error(exc):
            raise
        guard()
        # Logged, not warned: the guard fully works around the problem for skgradnorm,
        # and a warning on every import would be noise for users who cannot change builds.
        logger.info(
            "torchvision failed to import (%s); this happens when a CUDA build of "
            "torchvision is installed next to a CPU build of torch. skgradnorm skipped "
            "torchvision's meta-kernel registrations so that its image transforms (all "
            "that CLIP preprocessing needs) work; torchvision.ops will not. Install "
            "matching torch and torchvision builds to avoid this.",
            exc,
        )
        try:
            open_clip = importer("open_clip")
        except Exception as exc2:
            raise exc2 from exc
    return open_clip
