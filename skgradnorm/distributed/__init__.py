"""Past one machine: embed images and noun banks on a Dask cluster, predict block-wise.

Install with ``pip install "skgradnorm[dask]"``. Nothing here is imported by
``import skgradnorm``: the single-machine path never imports dask.

- :func:`embed_images` / :func:`embed_directory` embed image files on a
  ``dask.distributed`` cluster in partitions, one model load per worker, each partition
  written to an embeddings folder as it finishes (a failed job resumes);
  :func:`load_embeddings` reads such a folder lazily as a dask array.
- :func:`embed_nouns` computes the chunks of the encoder's noun-bank cache in parallel.
- :func:`predict_blockwise`, :func:`transform_blockwise` and :class:`BlockwisePostFit`
  apply fitted estimators to a dask array block by block (dask-ml's ``ParallelPostFit``
  behaviour), after fitting on an in-memory sample.

See the "Past one machine" page of the documentation for multi-GPU and multi-node set-ups.
"""

try:
    import dask.array  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "skgradnorm.distributed needs dask and distributed; install them with "
        'pip install "skgradnorm[dask]".'
    ) from exc

from ..exceptions import IncompleteEmbeddingsError  # its home; kept here too
from ._blockwise import BlockwisePostFit, predict_blockwise, transform_blockwise
from ._embed import DEFAULT_PARTITION_SIZE, embed_directory, embed_images, load_embeddings
from ._nouns import embed_nouns, noun_cache_for

__all__ = [
    "DEFAULT_PARTITION_SIZE",
    "BlockwisePostFit",
    "IncompleteEmbeddingsError",
    "embed_directory",
    "embed_images",
    "embed_nouns",
    "load_embeddings",
    "noun_cache_for",
    "predict_blockwise",
    "transform_blockwise",
]
