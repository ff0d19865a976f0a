"""What every benchmark shares: peak memory of a child process, running a child, table rows.

Each benchmark module runs every implementation in its own child process (``python
MODULE --worker NAME ...``) so that its peak memory is measured alone, and exposes
``run_suite(scale, threads) -> list[Row]`` for :mod:`benchmarks.run`, which prints every
row in one table.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field

SCALES = ("small", "imagenet")


@dataclass
class Row:
    """One line of the results table.

    ``seconds`` is the wall time of the measured call; ``peak_mib`` the child's peak
    resident set size over its whole life (inputs included); ``extra_mib`` its growth during
    the measured call over what it held just before (inputs loaded); ``ratio`` the time of
    this row over the time of the step's reference row (the package), measured in the
    same run; ``note`` the quality figure (objective, identical output, accuracy...).
    """

    step: str
    size: str
    impl: str
    seconds: float
    peak_mib: float = float("nan")
    extra_mib: float = float("nan")
    ratio: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self):
        return asdict(self)


def _status_kib(name):
    with open("/proc/self/status") as f:
        return int(re.search(rf"{name}:\s+(\d+)", f.read()).group(1))


# The peak resident set size is read from /proc/self/status (VmHWM), which belongs to this
# process's own address space. ``getrusage``'s ``ru_maxrss`` is not used: Linux carries it
# over ``execve``, so a child started by a large parent (``subprocess`` forks it from the
# parent) reports the parent's peak as its own.
_HIGHEST_BEFORE_RESET = [0]


def reset_peak_rss() -> int:
    """Current resident set size in bytes, after resetting the peak (Linux ``clear_refs``).

    The peak before the reset is kept for :func:`lifetime_peak_rss`.
    """
    _HIGHEST_BEFORE_RESET[0] = max(_HIGHEST_BEFORE_RESET[0], _status_kib("VmHWM") * 1024)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    """Peak resident set size in bytes since the last :func:`reset_peak_rss` (or start)."""
    return _status_kib("VmHWM") * 1024


def lifetime_peak_rss() -> int:
    """Peak resident set size in bytes over the whole life of the process."""
    return max(_HIGHEST_BEFORE_RESET[0], peak_rss())


def limit_threads(threads: int) -> None:
    """Use ``threads`` threads in torch and in the BLAS / OpenMP pools (faiss's included)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:
        pass


def run_child(script: str, args: list[str]) -> dict:
    """Run ``python script --worker ...`` and return the JSON its last stdout line holds."""
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(result: dict) -> None:
    """Print a worker's result as the last line of its stdout (read by :func:`run_child`)."""
    print(json.dumps(result), flush=True)


def mib(n_bytes) -> float:
    return float(n_bytes) / 2**20


def format_table(rows: list[Row]) -> str:
    """The rows as one Markdown table."""
    head = (
        "step",
        "size",
        "implementation",
        "time (s)",
        "peak RSS (MiB)",
        "extra (MiB)",
        "time ratio",
        "quality",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ratio = (
            "1.00 (ref.)"
            if r.ratio is None and _is_reference(r, rows)
            else ("" if r.ratio is None else f"{r.ratio:.2f}")
        )
        cells = (
            r.step,
            r.size,
            r.impl,
            f"{r.seconds:.2f}",
            _num(r.peak_mib),
            _num(r.extra_mib),
            ratio,
            r.note,
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _is_reference(row: Row, rows: list[Row]) -> bool:
    return any(o is not row and o.step == row.step and o.ratio is not None for o in rows)


def _num(x) -> str:
    return "" if x != x else f"{x:,.0f}"  # NaN -> empty
