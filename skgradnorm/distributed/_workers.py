"""What runs on the workers: one encoder (one model load) per worker process, and the client.

The model is the expensive part of a task (ViT-B/32 is some 600 MB to read and move to the
GPU), so it must be loaded once per worker, not once per partition. Each worker process
keeps its encoders in a module-level table keyed by the encoder's parameters; a
:class:`~skgradnorm.CLIPEncoder` loads its model on first use and keeps it, so the first task
of a worker loads the model and the following ones reuse it. Dask runs a worker's tasks in
its threads, hence the lock. The model is never sent over the network: a pickled
``CLIPEncoder`` carries its parameters only.
"""

from __future__ import annotations

import os
import threading

import joblib
from sklearn.base import clone

_ENCODERS: dict = {}
_LOCK = threading.Lock()


def encoder_key(encoder) -> str:
    """A digest of the encoder's parameters and of the current version of its local weights
    (what decides the model it loads): weights rewritten at the same path make a new key,
    so a worker never embeds with a model it loaded from the old file."""
    params = encoder.get_params(deep=False)
    return joblib.hash((type(encoder).__qualname__, params, _weights_stamp(params)))


def _weights_stamp(params) -> list:
    """Cheap fingerprints (``file_fingerprint``) of the local weights files the parameters
    name (a file, or the files of a ``local-dir:`` folder); empty for tags."""
    from .._utils._safe_files import file_fingerprint

    stamps = []
    for value in (params.get("model_name"), params.get("pretrained")):
        if not isinstance(value, (str, os.PathLike)):
            continue
        path = os.fspath(value)
        path = os.path.expanduser(
            path[len("local-dir:") :] if path.startswith("local-dir:") else path
        )
        try:
            if os.path.isfile(path):
                stamps.append(file_fingerprint(path))
            elif os.path.isdir(path):
                for name in sorted(os.listdir(path)):
                    if os.path.isfile(os.path.join(path, name)):
                        stamps.append((name, file_fingerprint(os.path.join(path, name))))
        except OSError:
            continue  # unreadable: the model load reports it
    return stamps


def worker_encoder(encoder, **overrides):
    """This process's copy of ``encoder`` (with ``overrides``), created on first use.

    Every call with equal parameters returns the same object, so its model is loaded once
    per worker process.
    """
    template = clone(encoder).set_params(**overrides) if overrides else clone(encoder)
    key = encoder_key(template)
    with _LOCK:
        cached = _ENCODERS.get(key)
        if cached is None:
            cached = _ENCODERS[key] = (threading.Lock(), template)
    lock, enc = cached
    return lock, enc


def run_with_worker_encoder(encoder, overrides, method, *args):
    """Call ``method`` of this worker's encoder; one thread at a time per encoder."""
    lock, enc = worker_encoder(encoder, **overrides)
    with lock:  # a torch model is not meant to be run by several threads at once
        return getattr(enc, method)(*args)


def resolve_client(client=None, scheduler=None):
    """``(client, owned)``: the client to use, and whether this call created it.

    ``client`` wins; else ``scheduler`` (an address such as ``"tcp://10.0.0.1:8786"``, or a
    path to a scheduler file written by ``dask scheduler --scheduler-file``) connects a new
    client; else the current default client, if any; else ``None`` (run in this process).
    """
    if client is not None and scheduler is not None:
        raise ValueError("give client or scheduler, not both.")
    if client is not None:
        return client, False
    from distributed import Client

    if scheduler is not None:
        scheduler = os.fspath(scheduler)
        if _is_scheduler_file(scheduler):
            # distributed waits, without end, for a scheduler file to appear: check it here
            if not os.path.isfile(scheduler):
                raise FileNotFoundError(
                    f"scheduler file {scheduler!r} does not exist; start the scheduler with "
                    f"`dask scheduler --scheduler-file {scheduler}` first, or give its address "
                    "(tcp://host:8786)."
                )
            return Client(scheduler_file=scheduler), True
        return Client(scheduler), True
    try:
        from distributed import default_client

        return default_client(), False
    except ValueError:
        return None, False


def _is_scheduler_file(scheduler: str) -> bool:
    """A scheduler file rather than an address (``tcp://host:8786``, ``host:8786``)."""
    if "://" in scheduler:
        return False
    return scheduler.endswith(".json") or os.sep in scheduler or os.path.isfile(scheduler)


def raise_first_error(client, futures):
    """Wait for ``futures``; at the first failed one, cancel the rest and raise its error."""
    from distributed import as_completed

    for future in as_completed(futures, loop=client.loop, raise_errors=False):
        if future.status == "error":
            client.cancel(futures)
            future.result()  # raises the task's exception here, with its traceback
