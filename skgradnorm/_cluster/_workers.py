"""The k-means' thread use on the CPU: single-threaded workers over fixed blocks of rows.

torch's and faiss's own (intra-op, OpenMP) threads meet at a barrier after every
operation. When other processes keep the cores busy, a barrier waits for whichever thread
the scheduler has set aside, for up to a time slice, and a k-means runs thousands of
operations: on 2 busy cores, a fit that took 10 s on one thread took 120 s on two, most of
it in the k-means++ seeding's ~600 small operations per hundred centres
(``benchmarks/RESULTS.md``). Here instead each worker thread runs whole blocks of rows on
one thread and takes the next block when done, so a worker that is set aside holds back at
most the block it has. The blocks are fixed by the row indices alone, and whatever is
combined across blocks is combined in block order, so the results do not depend on the
number of workers or on which worker took which block.

The standard library's thread pool is used rather than joblib's: the work is a few large
BLAS calls per block that release the GIL, and the pool must live for a whole fit
(hundreds of passes) with the results combined in order as the blocks finish.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["Workers", "cpu_workers", "one_thread_here"]


def one_thread_here():
    """Make torch (and faiss, if imported) run on one thread in the calling thread.

    Both set the thread count of the calling thread only (OpenMP's and MKL's per-thread
    settings), except that torch also keeps the value for threads it has not seen yet;
    :func:`cpu_workers` restores it on exit.
    """
    torch.set_num_threads(1)
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(1)


class Workers:
    """Run a function over fixed blocks of rows on single-threaded worker threads.

    Parameters
    ----------
    threads : dict
        The number of workers for the work of each library, ``{"torch": n, "faiss": m}``:
        the thread counts the user set for them (``torch.set_num_threads``,
        ``faiss.omp_set_num_threads``).
    """

    def __init__(self, threads):
        self.threads = {name: max(1, int(n)) for name, n in threads.items()}
        self._executor = None

    def run(self, fn, slices, *, library="torch", then=None):
        """``fn(sl)`` for every slice, on up to ``threads[library]`` workers.

        ``then(sl, result)`` is called for every slice in slice order (one call at a time),
        as soon as the slices before it are done, so that a caller can fold the results in
        a fixed order while the other blocks are computed. Returns the results in order.
        """
        slices = list(slices)
        n_workers = min(self.threads.get(library, 1), len(slices))
        results = [None] * len(slices)
        if n_workers <= 1:  # in the calling thread, whose thread count is then already 1
            for i, sl in enumerate(slices):
                results[i] = fn(sl)
                if then is not None:
                    then(sl, results[i])
            return results
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max(self.threads.values()), thread_name_prefix="skgradnorm-kmeans"
            )
        counter = itertools.count()  # next() on it is atomic under the GIL
        lock = threading.Lock()
        done = set()
        folded = [0]  # slices folded by ``then`` so far
        failed = []

        def runner():
            one_thread_here()
            try:
                while not failed:
                    i = next(counter)
                    if i >= len(slices):
                        return
                    results[i] = fn(slices[i])
                    if then is not None:
                        fold(i)
            except BaseException as exc:  # stop the other workers; re-raised below
                failed.append(exc)
                raise

        def fold(i):
            with lock:
                done.add(i)
                while folded[0] in done:
                    j = folded[0]
                    then(slices[j], results[j])
                    done.discard(j)
                    folded[0] += 1

        futures = [self._executor.submit(runner) for _ in range(n_workers)]
        for future in futures:
            future.result()
        return results

    def close(self):
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


@contextlib.contextmanager
def cpu_workers(device: torch.device, *, faiss_threads=None):
    """:class:`Workers` for a fit on ``device``, or None when it is not the CPU.

    For the duration, the calling thread runs torch on one thread (its small operations
    then never wait at a barrier); the workers get the torch thread count it had, and
    ``faiss_threads`` (faiss's count, when faiss computes the assignment passes).
    """
    if device.type != "cpu":
        yield None
        return
    previous = torch.get_num_threads()
    threads = {"torch": previous, "faiss": faiss_threads or 1}
    workers = Workers(threads)
    torch.set_num_threads(1)
    try:
        yield workers
    finally:
        workers.close()
        torch.set_num_threads(previous)
