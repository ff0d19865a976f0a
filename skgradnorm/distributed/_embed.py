"""Embed images on a Dask cluster, partition by partition, into a resumable folder."""

from __future__ import annotations

import logging
import os
import uuid
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, validate_params

from ..exceptions import IncompleteEmbeddingsError
from . import _store
from ._workers import raise_first_error, resolve_client, run_with_worker_encoder, worker_encoder

logger = logging.getLogger(__name__)

#: Images per partition (the unit of work, of writing and of resuming) unless told otherwise.
DEFAULT_PARTITION_SIZE = 1024
_ENCODER = HasMethods(["transform", "get_params"])


def _encoder_identity(encoder) -> dict:
    """What in the encoder decides the embeddings (stored in, and checked against, EMB_DIR)."""
    params = encoder.get_params(deep=False)
    ident = {"class": type(encoder).__name__}
    for name in ("model_name", "pretrained", "precision"):
        value = params.get(name)
        ident[name] = None if value is None else os.fspath(value) if name == "pretrained" else value
    return ident


def _default_encoder(encoder):
    """The encoder to use, its parameters checked here (before any work is sent out)."""
    if encoder is None:
        from .. import CLIPEncoder

        encoder = CLIPEncoder()
    if hasattr(encoder, "fit"):
        clone(encoder).fit()  # validates the parameters; loads no model
    return encoder


def _model_key(encoder):
    """This worker's encoder's :meth:`~skgradnorm.CLIPEncoder.model_key` (loads its model
    once per worker), or None for an encoder without one."""
    lock, enc = worker_encoder(encoder, verbose=False)
    with lock:
        return enc.model_key() if hasattr(enc, "model_key") else None


def _embed_partition(encoder, paths, folder, index, run):
    """One task: embed ``paths`` with this worker's model and write partition ``index``.

    A partition already on disk (written by an earlier job, or by this task before its
    worker died) is not computed again if it was made from the same image contents by the
    same model; an image edited in place, or other weights, make it computed again.
    Returns the number of rows and columns.
    """
    if folder is None:
        return run_with_worker_encoder(encoder, {"verbose": False}, "transform", paths)
    record = {"contents": _store.contents_sha256(paths), "model": _model_key(encoder)}
    if _store.partition_is_done(folder, index, len(paths), record):
        meta = _store.read_sidecar(folder, index)
        return tuple(meta["shape"])
    emb = run_with_worker_encoder(encoder, {"verbose": False}, "transform", paths)
    _store.save_partition(folder, index, emb, run, record)
    return emb.shape


def _prepare_folder(folder: Path, manifest: dict, stored_paths, resume: bool) -> None:
    existing = _store.read_manifest(folder)
    if existing is not None and resume:
        keys = ("n_images", "partition_size", "paths_sha256", "encoder", "image_root")
        diff = [k for k in keys if existing.get(k) != manifest.get(k)]
        if diff:
            raise ValueError(
                f"out_dir {str(folder)!r} holds embeddings made with a different "
                f"{', '.join(diff)}; pass a new out_dir, or resume=False to overwrite it."
            )
    if not resume:
        for p in list(folder.glob("part_*.npy")) + list(folder.glob("part_*.json")):
            p.unlink()
    _store.write_manifest(folder, manifest, stored_paths)


def _embed_to_folder(paths, encoder, client, folder, partition_size, resume, stored, root):
    bounds = _store.partition_bounds(len(paths), partition_size)
    manifest = {
        "format": _store.FORMAT,
        "version": _store.FORMAT_VERSION,
        "n_images": len(paths),
        "partition_size": partition_size,
        "n_partitions": len(bounds),
        "paths_sha256": _store.paths_sha256(stored),
        "encoder": _encoder_identity(encoder),
        "image_root": root,
    }
    _prepare_folder(folder, manifest, stored, resume)
    run = uuid.uuid4().hex
    # Every partition is a task: one found on disk is kept only if its images' contents and
    # the model are those of this job, which only a worker (with the model) can tell.
    pending = range(len(bounds))
    logger.info("%s: %d partitions to check or compute (run %s)", folder, len(bounds), run)
    args = [(encoder, paths[bounds[i][0] : bounds[i][1]], str(folder), i, run) for i in pending]
    if client is None:
        for a in args:
            _embed_partition(*a)
    else:
        futures = [
            client.submit(_embed_partition, *a, key=f"skgradnorm-embed-{run}-{a[3]}", pure=False)
            for a in args
        ]
        raise_first_error(client, futures)
    return load_embeddings(folder)[0]


def _embed_in_memory(paths, encoder, client, partition_size):
    import dask.array as da

    bounds = _store.partition_bounds(len(paths), partition_size)
    run = uuid.uuid4().hex
    if client is None:
        parts = [
            _embed_partition(encoder, paths[s:e], None, i, run) for i, (s, e) in enumerate(bounds)
        ]
        return da.concatenate([da.from_array(p, chunks=p.shape) for p in parts])
    futures = [
        client.submit(
            _embed_partition, encoder, paths[s:e], None, i, run, key=f"skgradnorm-embed-{run}-{i}"
        )
        for i, (s, e) in enumerate(bounds)
    ]
    raise_first_error(client, futures)
    dim = client.submit(np.shape, futures[0]).result()[1]
    blocks = [
        da.from_delayed(f, shape=(e - s, dim), dtype=np.float32)
        for f, (s, e) in zip(futures, bounds, strict=True)
    ]
    return da.concatenate(blocks)


@validate_params(
    {
        "paths": ["array-like", str, os.PathLike],  # one path: a clearer error below
        "encoder": [_ENCODER, None],
        "client": [None, HasMethods(["submit"])],
        "out_dir": [str, os.PathLike, None],
        "partition_size": [Interval(Integral, 1, None, closed="left")],
        "resume": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def embed_images(
    paths,
    encoder=None,
    *,
    client=None,
    out_dir=None,
    partition_size=DEFAULT_PARTITION_SIZE,
    resume=True,
):
    """Embed image files on a Dask cluster, in partitions, one model load per worker.

    The paths are cut into consecutive partitions of ``partition_size`` images; each
    partition is one task, embedded by ``encoder.transform`` on a worker. A worker loads the
    model once, with its first task, and keeps it for the following ones. With ``out_dir``,
    each partition is written to disk as soon as it is done, so a job that fails, is
    killed or loses workers is finished by calling this function again: partitions already
    on disk are not computed again. Dask itself reruns the tasks of a worker that dies.

    Parameters
    ----------
    paths : sequence of str or path-like
        The image files. Every worker must be able to read them (on several machines: a
        shared file system).
    encoder : CLIPEncoder or None, default=None
        The encoder, sent to the workers as its parameters (never its model). ``None``
        uses ``CLIPEncoder()`` (ViT-B-32, OpenAI weights). Its ``device`` is resolved on
        each worker; with ``device=None`` a worker on a GPU uses it.
    client : distributed.Client or None, default=None
        The cluster. ``None`` uses the current default client when there is one, else
        embeds the partitions one after the other in this process (still resumable).
    out_dir : str, path-like or None, default=None
        The embeddings folder (created if needed; on several machines, a shared folder).
        ``None`` keeps the embeddings in the workers' memory (not resumable).
    partition_size : int, default=1024
        Images per partition: the unit of work, of writing and of resuming.
    resume : bool, default=True
        Reuse the partitions already in ``out_dir``. The folder must then hold embeddings of
        the same paths by the same model (else a ``ValueError`` says so). ``False`` deletes
        its partitions and starts over.

    Returns
    -------
    embeddings : dask.array.Array of shape (n_images, embed_dim), float32
        L2-normalised image embeddings in the order of ``paths``, one block per partition.
        With ``out_dir`` they are read lazily from the folder (see :func:`load_embeddings`);
        without, they live in the workers' memory.

    Raises
    ------
    UnreadableImageError
        If image files of a partition cannot be read (the error lists them); the
        partitions already written are kept.

    See Also
    --------
    embed_directory : the same for every image in a folder (``skgradnorm embed``).
    load_embeddings : read an embeddings folder back.
    skgradnorm.CLIPEncoder.transform : the embedding of one partition.

    Notes
    -----
    Each partition holds ``partition_size`` rows of ``embed_dim`` float32 values. Choose
    ``partition_size`` so that a partition takes tens of seconds on a worker: small enough
    to lose little work when a worker dies, large enough to keep the GPU busy (several
    ``encoder.batch_size``) and to keep the number of tasks and files moderate (a few
    thousand per job).

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from skgradnorm import CLIPEncoder
    >>> from skgradnorm.distributed import embed_images
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
    >>> U = embed_images(paths, CLIPEncoder(), client=client, out_dir="emb")  # doctest: +SKIP
    >>> U.shape  # doctest: +SKIP
    (10000, 512)
    """
    paths = _store.check_paths(paths)
    encoder = _default_encoder(encoder)
    client, _ = resolve_client(client)
    if out_dir is None:
        return _embed_in_memory(paths, encoder, client, partition_size)
    folder = Path(os.fspath(out_dir)).expanduser()
    return _embed_to_folder(paths, encoder, client, folder, partition_size, resume, paths, None)


@validate_params(
    {
        "image_dir": [str, os.PathLike],
        "out_dir": [str, os.PathLike],
        "encoder": [_ENCODER, None],
        "scheduler": [str, os.PathLike, None],
        "client": [None, HasMethods(["submit"])],
        "partition_size": [Interval(Integral, 1, None, closed="left")],
        "resume": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def embed_directory(
    image_dir,
    out_dir,
    *,
    encoder=None,
    scheduler=None,
    client=None,
    partition_size=DEFAULT_PARTITION_SIZE,
    resume=True,
):
    """Embed every image under a folder into an embeddings folder (``skgradnorm embed``).

    The images are found as ``skgradnorm cluster`` finds them (recursively, by extension,
    hidden files skipped, sorted), then embedded by :func:`embed_images` with ``out_dir``.
    ``out_dir`` records the paths relative to ``image_dir``, and ``image_dir`` itself.

    Parameters
    ----------
    image_dir : str or path-like
        The folder of images.
    out_dir : str or path-like
        The embeddings folder (created if needed; resumed if it holds a partial job).
    encoder : CLIPEncoder or None, default=None
        The encoder (``None``: ``CLIPEncoder()``).
    scheduler : str, path-like or None, default=None
        A Dask scheduler to connect to: its address (``"tcp://host:8786"``) or the JSON
        file written by ``dask scheduler --scheduler-file``. ``None`` uses ``client``.
    client : distributed.Client or None, default=None
        An existing client; with neither, the default client if any, else this process.
    partition_size : int, default=1024
        Images per partition.
    resume : bool, default=True
        Reuse the partitions already in ``out_dir``; ``False`` starts over.

    Returns
    -------
    embeddings : dask.array.Array of shape (n_images, embed_dim), float32
        Read lazily from ``out_dir``.
    paths : list of str
        The image files, in the order of the rows.

    See Also
    --------
    embed_images, load_embeddings

    Examples
    --------
    >>> from skgradnorm.distributed import embed_directory
    >>> U, paths = embed_directory("photos/", "emb/", scheduler="tcp://10.0.0.1:8786")
    ... # doctest: +SKIP
    """
    from .._clip._images import find_images  # the command line's rule for what is an image

    image_dir = Path(os.fspath(image_dir)).expanduser()
    if not image_dir.is_dir():
        raise ValueError(f"image_dir {str(image_dir)!r} is not a folder.")
    rel_paths = find_images(image_dir)
    if not rel_paths:
        raise ValueError(f"no images found in {str(image_dir)!r}.")
    encoder = _default_encoder(encoder)
    client, owned = resolve_client(client, scheduler)
    try:
        root = str(image_dir.resolve())
        full = [os.path.join(root, p) for p in rel_paths]
        folder = Path(os.fspath(out_dir)).expanduser()
        _embed_to_folder(full, encoder, client, folder, partition_size, resume, rel_paths, root)
    finally:
        if owned:
            client.close()
    return load_embeddings(folder)


@validate_params(
    {"emb_dir": [str, os.PathLike], "model_key": [dict, None]}, prefer_skip_nested_validation=True
)
def load_embeddings(emb_dir, *, model_key=None):
    """Read an embeddings folder lazily: a dask array, one block per partition, and the paths.

    Parameters
    ----------
    emb_dir : str or path-like
        A folder written by :func:`embed_images` (with ``out_dir``) or
        :func:`embed_directory` (``skgradnorm embed``).
    model_key : dict or None, default=None
        If given (:meth:`CLIPEncoder.model_key <skgradnorm.CLIPEncoder.model_key>` of the
        encoder that will embed the nouns), every partition must have been made by that
        model: embeddings of two models are never mixed.

    Returns
    -------
    embeddings : dask.array.Array of shape (n_images, embed_dim), float32
        Nothing is read until the array is computed; each block memory-maps one partition.
    paths : list of str
        The image paths in the order of the rows (joined with the image folder for
        :func:`embed_directory`).

    Raises
    ------
    IncompleteEmbeddingsError
        If partitions are missing or damaged: run the same embedding job again to finish it.
    ValueError
        If ``model_key`` is given and a partition was made by another model.

    See Also
    --------
    embed_images, embed_directory
    """
    import dask
    import dask.array as da

    folder = Path(os.fspath(emb_dir)).expanduser()
    manifest = _store.read_manifest(folder)
    if manifest is None:
        raise FileNotFoundError(
            f"{str(folder)!r} holds no {_store.MANIFEST}; make it with `skgradnorm embed` or "
            "skgradnorm.distributed.embed_images(..., out_dir=...)."
        )
    bounds = _store.partition_bounds(manifest["n_images"], manifest["partition_size"])
    shapes = [_store.read_sidecar(folder, i) for i in range(len(bounds))]
    missing = [
        i
        for i, (meta, (s, e)) in enumerate(zip(shapes, bounds, strict=True))
        if meta is None
        or meta.get("shape", [None])[0] != e - s
        or not _store.part_paths(folder, i)[0].exists()
    ]
    if missing:
        raise IncompleteEmbeddingsError(
            f"{str(folder)!r} holds {len(bounds) - len(missing)} of {len(bounds)} partitions "
            f"(first missing: {missing[0]}); run the same embedding job again to finish it."
        )
    if model_key is not None:
        _check_model(folder, shapes, model_key)
    dim = shapes[0]["shape"][1]
    blocks = []
    for i, (s, e) in enumerate(bounds):
        path = str(_store.part_paths(folder, i)[0])
        load = dask.delayed(_store.load_partition, pure=True)(path, shapes[i].get("sha256"), e - s)
        blocks.append(da.from_delayed(load, shape=(e - s, dim), dtype=np.float32))
    paths = _store.read_paths(folder)
    root = manifest.get("image_root")
    if root is not None:
        paths = [os.path.join(root, p) for p in paths]
    return da.concatenate(blocks), paths


def _check_model(folder: Path, sidecars, model_key: dict) -> None:
    """Every partition made by ``model_key``'s model, or one ``ValueError`` saying not."""
    for i, meta in enumerate(sidecars):
        stored = meta.get("model")
        if stored == model_key:
            continue
        if stored is None:
            raise ValueError(
                f"{str(folder)!r}: partition {i} does not record the model that made it "
                "(an older skgradnorm, or an encoder without model_key); embed the images "
                "again into a new folder."
            )
        keys = sorted(set(stored) | set(model_key)) if isinstance(stored, dict) else ["model"]
        differ = [
            k for k in keys if not isinstance(stored, dict) or stored.get(k) != model_key.get(k)
        ]
        raise ValueError(
            f"{str(folder)!r} holds embeddings of another model (partition {i} differs in: "
            f"{', '.join(differ)}); use the model and weights they were made with, or embed "
            "the images again."
        )
