"""Small torch helpers shared by the math and the estimators: devices, dtypes, chunks, OOM."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)


def resolve_device(device=None) -> torch.device:
    """Return the torch device to compute on.

    ``None`` picks the best available device: CUDA, then Apple's MPS, then the CPU.
    A string such as ``"cpu"``, ``"cuda"`` or ``"cuda:1"``, or a ``torch.device``,
    is used as given (it is an error to ask for CUDA where there is none).
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use None (best available), "
            "'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA but torch.cuda.is_available() is False; "
            "use device=None to pick the best available device, or device='cpu'."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r}: there are only {torch.cuda.device_count()} CUDA device(s) "
            f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})."
        )
    if dev.type == "mps" and not _mps_available():
        raise ValueError(
            f"device={device!r} asks for Apple's MPS, which is not available here; use "
            "device=None to pick the best available device, or device='cpu'."
        )
    if dev.type not in COMPUTE_DEVICE_TYPES:
        raise ValueError(
            f"device={device!r} is not a device skgradnorm computes on; use None (best "
            "available), 'cpu', 'cuda', 'cuda:N' or 'mps'."
        )
    return dev


#: Device types the package computes on (``meta`` tensors, for one, hold no data).
COMPUTE_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def device_name(device) -> str:
    """The device as people name it: ``"cpu"``, ``"cuda:0"`` (the index CUDA will use when
    none is given), ``"mps"``."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    return str(dev)


def torch_dtype_for(*arrays) -> torch.dtype:
    """float64 if any input is float64, else float32 (scikit-learn's dtype convention)."""
    for a in arrays:
        if getattr(a, "dtype", None) in (np.float64, torch.float64):
            return torch.float64
    return torch.float32


def numpy_dtype_for(dtype: torch.dtype):
    """The numpy dtype of a torch float dtype (float64 or float32)."""
    return np.float64 if dtype == torch.float64 else np.float32


def sum_dtype(device: torch.device) -> torch.dtype:
    """Dtype of sums over many samples (objectives, potentials): float64, but MPS has none."""
    return torch.float32 if device.type == "mps" else torch.float64


def as_tensor(array, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Move an array (numpy or torch) to ``device`` and ``dtype`` without copying when possible."""
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(array), dtype=dtype, device=device)


def default_chunk_size(
    n_columns: int, device: torch.device, budget_bytes: int | None = None
) -> int:
    """Rows per chunk so that a (rows, n_columns) float32 work matrix stays within a budget.

    On the CPU the budget is small (8 MiB) so that the work matrix stays in cache across the
    several element-wise passes made over it; on accelerators it is larger (256 MiB).
    """
    if budget_bytes is None:
        budget_bytes = (8 << 20) if device.type == "cpu" else (256 << 20)
    return int(max(16, min(65536, budget_bytes // (4 * max(1, n_columns)))))


def iter_chunks(n: int, chunk_size: int):
    """Yield ``slice`` objects covering ``range(n)`` in steps of ``chunk_size``."""
    for start in range(0, n, chunk_size):
        yield slice(start, min(n, start + chunk_size))


@contextlib.contextmanager
def single_threaded_on_cpu(device: torch.device):
    """Run a block with one intra-op torch thread when ``device`` is the CPU.

    ``index_add_`` (the scatter-add of the k-means centre update) is memory-bound and its
    multi-threaded CPU kernel is erratic: with 2 threads it was several times slower than
    with one, and far slower still on small inputs when the cores were busy. One thread was
    faster in every case measured.
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    # Apple's MPS reports memory exhaustion as a plain RuntimeError.
    return isinstance(exc, RuntimeError) and "MPS backend out of memory" in str(exc)


def run_with_oom_backoff(fn, items, batch_size, *, on_batch=None):
    """Apply ``fn`` to consecutive slices of ``items``, halving the slice on out-of-memory.

    ``fn(items[start:stop])`` is called for slices of at most ``batch_size`` items. When it
    raises ``torch.cuda.OutOfMemoryError`` (or MPS's out-of-memory error), the batch size is
    set to half the failed slice, the CUDA cache is emptied and the rest is tried again; a
    slice of one item that runs out of memory raises the error.

    Returns
    -------
    outputs : list
        ``fn``'s results, in order.
    batch_size : int
        The batch size that worked last (callers reuse it for the next call).
    """
    batch_size = max(1, int(batch_size))
    outputs = []
    start = 0
    n = len(items)
    while start < n:
        stop = min(n, start + batch_size)
        failed = False
        try:
            out = fn(items[start:stop])
        except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc) or stop - start == 1:
                raise
            failed = True
        if failed:
            # Outside the except block, so the failed attempt's tensors are released first.
            batch_size = max(1, (stop - start) // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            logger.warning("out of memory; retrying with batch size %d", batch_size)
            continue
        outputs.append(out)
        if on_batch is not None:
            on_batch(stop - start)
        start = stop
    return outputs, batch_size
