"""The errors and warnings that skgradnorm raises, importable without loading torch.

Catch these by class rather than by message; each message says what was wrong and what to
do about it.
"""

from __future__ import annotations

__all__ = [
    "CacheCorruptionWarning",
    "CacheUnavailableWarning",
    "EmbeddingsFileError",
    "IncompleteEmbeddingsError",
    "LanguageDoesNotHelpWarning",
    "OutputFolderError",
    "PretrainedWeightsError",
    "RandomWeightsWarning",
    "SlowNounBankWarning",
    "UnreadableImageError",
]


class UnreadableImageError(ValueError):
    """Some image files could not be read; ``failures`` lists ``(file, reason)`` for each.

    Raised by :meth:`skgradnorm.CLIPEncoder.transform` once for all the bad files of a call,
    so that they can be fixed together.
    """

    def __init__(self, failures):
        self.failures = list(failures)
        lines = [f"  {name}: {reason}" for name, reason in self.failures]
        super().__init__(
            f"{len(self.failures)} image(s) could not be read:\n"
            + "\n".join(lines)
            + "\nRemove or replace these files and call again."
        )


class OutputFolderError(ValueError):
    """An output folder cannot take the results: not creatable, not a folder, not writable,
    or holding a symbolic link (or something that is not a file) where an output goes.

    Raised by :func:`skgradnorm._reporting._out_dir.check_output_dir` (meant to run before any
    computation) and again by the writer; the message is one line naming the path.
    """


class PretrainedWeightsError(RuntimeError):
    """The requested pretrained weights could not be loaded (often: no network).

    The message says how to pass the same weights from a local file or folder instead.
    """


class RandomWeightsWarning(UserWarning):
    """A CLIP model was built with random weights (``pretrained=None``): tests and timing only."""


class CacheCorruptionWarning(UserWarning):
    """A cached noun-embedding chunk was damaged (unreadable, wrong shape, bad checksum).

    The chunk is never used: it is computed again and rewritten.
    """


class CacheUnavailableWarning(UserWarning):
    """An on-disk cache folder cannot be written (read-only, not a folder, disk full).

    The work goes on without the cache, so nothing is lost but the time it would save next
    time; give a writable ``cache_dir`` to keep the results.
    """


class SlowNounBankWarning(UserWarning):
    """Embedding the nouns that are not cached yet will take long (minutes to hours).

    Raised by a verbose :class:`skgradnorm.CLIPEncoder` before it starts, from a timed
    batch of the nouns; the message gives the estimate and the ways to shorten it (a GPU,
    a smaller vocabulary, the cache that makes the next run instant).
    """


class IncompleteEmbeddingsError(RuntimeError):
    """An embeddings folder whose job has not finished (some partitions are missing).

    Raised by :func:`skgradnorm.distributed.load_embeddings`; run the same ``embed`` job
    again to finish it (finished partitions are kept).
    """


class EmbeddingsFileError(ValueError):
    """A saved embeddings file cannot be used: missing or damaged, or of another model.

    Raised by ``skgradnorm._clip._embedding_files.load_embeddings``; the message says why and
    what to do (usually: embed the images again).
    """


class LanguageDoesNotHelpWarning(UserWarning):
    """No language setting separated the clusters clearly better than the images alone.

    Raised by :func:`skgradnorm.tuning.tune`, which then returns the image-only clustering:
    the image and text spaces of the encoder may barely agree on these images, and no noun
    selection can help then. ``language_gain_`` is the relative silhouette gain the best
    language setting reached (below ``min_language_gain``).
    """
