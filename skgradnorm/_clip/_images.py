"""Image inputs: which files are images, what ``CLIPEncoder.transform`` accepts, how files
are checked and read.

Image files are found under a folder by :func:`find_images` (the one rule the command line
and :mod:`skgradnorm.distributed` share).
Accepted images are file paths, PIL images and uint8 arrays (see :func:`as_image_items`).
Files are checked before the model runs (:func:`check_image_files`), read and preprocessed
by a torch ``DataLoader`` (:class:`_ImageDataset`), and embedded in batches that are halved
on out-of-memory errors (:func:`encode_images`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .._utils._progress import progress_bar
from .._utils._safe_files import open_regular
from .._utils._torch import run_with_oom_backoff
from .._utils._validation import l2_normalize_rows
from ..exceptions import UnreadableImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "as_image_items",
    "check_image_files",
    "encode_images",
    "find_images",
]


#: File name extensions (lower case) that ``skgradnorm cluster`` treats as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def find_images(image_dir) -> list[str]:
    """Image files under ``image_dir``, recursively, as sorted POSIX paths relative to it.

    A file is an image if its extension is in :data:`IMAGE_EXTENSIONS` (any case). Hidden
    files and folders (names starting with ".") are skipped. Symbolic links to folders are
    followed (a link back to a folder already visited is not, so cycles end).

    Raises
    ------
    PermissionError
        If ``image_dir`` or a folder under it cannot be listed (its images would be
        missed without a word); the message names the first few such folders.
    """
    root = Path(image_dir)
    found = []
    seen = set()
    unreadable = []

    def skipped(exc):  # os.walk's onerror: a folder it cannot list
        unreadable.append(exc)

    for folder, dirs, files in os.walk(root, followlinks=True, onerror=skipped):
        real = os.path.realpath(folder)
        if real in seen:  # a link cycle, or two links to one folder
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append((Path(folder) / name).relative_to(root).as_posix())
    if unreadable:
        raise _unreadable_folders(root, unreadable)
    return sorted(found)


def _unreadable_folders(root: Path, errors) -> PermissionError:
    """One error naming the folders under ``root`` that could not be listed."""

    def name(exc):
        where = exc.filename if exc.filename is not None else root
        try:
            return Path(where).relative_to(root).as_posix()
        except ValueError:
            return os.fspath(where)

    shown = "; ".join(f"{name(e)!r} ({e.strerror or type(e).__name__})" for e in errors[:3])
    more = f" and {len(errors) - 3} more" if len(errors) > 3 else ""
    if len(errors) == 1 and name(errors[0]) == ".":
        return PermissionError(
            f"cannot list the image folder {os.fspath(root)!r} "
            f"({errors[0].strerror or errors[0]}); check its permissions."
        )
    return PermissionError(
        f"cannot list {len(errors)} folder(s) under {os.fspath(root)!r}, so their images "
        f"would be left out: {shown}{more}. Fix their permissions, or move them out of the "
        "image folder."
    )


def scaled_to_uint8(image):
    """16-bit and float images as 8-bit grayscale ("L"), scaled the way viewers show them.

    Pillow's own ``convert`` clips these modes to 0-255, which turns a 16-bit gradient
    almost white and a float image in [0, 1] black. Here 16-bit integers (modes ``I;16*``,
    and ``I``, the mode some Pillow versions and TIFF give 16-bit files) are scaled by
    255 / 65535; floats (mode ``F``) in [0, 1] by 255, other float ranges from their finite
    minimum and maximum to 0-255. Other modes are returned unchanged.
    """
    from PIL import Image

    mode = image.mode
    if not (mode.startswith("I") or mode == "F"):
        return image
    a = np.asarray(image)
    if mode == "F":
        a = a.astype(np.float64)
        finite = np.isfinite(a)
        lo, hi = (a[finite].min(), a[finite].max()) if finite.any() else (0.0, 1.0)
        if lo < 0.0 or hi > 1.0:  # not a [0, 1] image: stretch its own range
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        a = np.where(finite, a, 0.0)
        scaled = np.rint(np.clip(a, 0.0, 1.0) * 255.0)
    else:
        a = np.clip(a.astype(np.int64), 0, 65535)
        scaled = (a * 255 + 32767) // 65535  # round(a / 257)
    return Image.fromarray(np.ascontiguousarray(scaled, dtype=np.uint8), mode="L")


def _to_rgb(image):
    """A PIL image in RGB mode, decoded as a browser shows it.

    EXIF orientation is applied (the picture is turned upright, as in the report's
    thumbnails), 16-bit and float images are scaled to 8 bits (:func:`scaled_to_uint8`),
    alpha is dropped and palette, grayscale and CMYK images are converted.
    """
    from PIL import ImageOps

    if image.width == 0 or image.height == 0:
        raise ValueError(f"the image is empty ({image.width} x {image.height} pixels)")
    if image.getexif().get(0x0112, 1) != 1:  # the Orientation tag: 1 is upright
        image = ImageOps.exif_transpose(image)
    image = scaled_to_uint8(image)
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # PIL warns when converting such palettes straight to RGB
    return image.convert("RGB")


def _array_to_pil(array: np.ndarray, where: str):
    from PIL import Image

    if array.dtype != np.uint8:
        raise ValueError(
            f"{where}: image arrays must have dtype uint8 (values 0-255); got {array.dtype}. "
            "Convert with (x * 255).round().astype(np.uint8) for floats in [0, 1]."
        )
    if array.ndim in (2, 3) and 0 in array.shape:
        raise ValueError(
            f"{where}: the image array is empty (shape {array.shape}); each image needs at "
            "least one pixel and one channel."
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), mode="L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        mode = "RGB" if array.shape[2] == 3 else "RGBA"
        return Image.fromarray(np.ascontiguousarray(array), mode=mode)
    raise ValueError(
        f"{where}: an image array must be H x W (grayscale) or H x W x C with C in 1, 3, 4; "
        f"got shape {array.shape}."
    )


def as_image_items(X) -> list:
    """Split the accepted inputs of ``transform`` into a list of single images."""
    from PIL import Image

    if X is None:
        raise ValueError("X is None; pass a list of image paths, PIL images or uint8 arrays.")
    if isinstance(X, (str, os.PathLike)):
        raise TypeError(
            f"X must be a list of images; got a single path {X!r}. Wrap it in a list: [path]."
        )
    if isinstance(X, Image.Image):
        return [X]
    if isinstance(X, np.ndarray):
        if X.dtype == object:
            items = list(X.ravel())
        elif X.dtype.kind in "US":  # an array of file names
            items = [x.decode() if isinstance(x, bytes) else str(x) for x in X.ravel()]
        elif X.ndim == 4:
            items = list(X)
        elif X.ndim in (2, 3):
            items = [X]
        else:
            raise ValueError(
                "an image array must be H x W, H x W x C or a batch N x H x W x C; "
                f"got shape {X.shape}."
            )
    else:
        try:
            items = list(X)
        except TypeError:
            raise TypeError(
                "X must be a sequence of image paths (str or pathlib.Path), PIL images or "
                f"uint8 numpy arrays; got {type(X).__name__}."
            ) from None
    if not items:
        raise ValueError("X is empty; pass at least one image.")
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            if item.ndim not in (2, 3):
                raise ValueError(
                    f"X[{i}]: an image array must be H x W or H x W x C; got shape {item.shape}."
                )
            if item.dtype != np.uint8 or 0 in item.shape:
                _array_to_pil(item, f"X[{i}]")  # raises the dtype or empty-image error
        elif isinstance(item, Image.Image) and (item.width == 0 or item.height == 0):
            raise ValueError(
                f"X[{i}]: the PIL image is empty ({item.width} x {item.height} pixels)."
            )
        elif not isinstance(item, (str, os.PathLike, Image.Image)):
            raise TypeError(
                f"X[{i}] is a {type(item).__name__}; each image must be a file path (str or "
                "pathlib.Path), a PIL image or a uint8 numpy array."
            )
    return items


def why_unreadable(exc) -> str:
    """Why an image could not be read, in words (Pillow's "cannot identify image file
    <_io.BufferedReader name=4>" names a file descriptor, not the problem)."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read (an unknown format, or an empty or damaged file)"
    return f"{type(exc).__name__}: {exc}"


def check_image_files(items) -> None:
    """Check every image file before the model runs; raise one error listing all bad files.

    ``Image.verify`` is cheap (31,000 files/s measured): it reads headers, and checksums in
    PNG files, not pixels, so a truncated JPEG passes it. When it finds bad files, the
    remaining files are decoded fully too, so that the error lists every unreadable file
    rather than only those ``verify`` catches. Files that pass ``verify`` but fail to
    decode on the happy path (a truncated JPEG) are collected while embedding (see
    ``CLIPEncoder._encode_images``) and reported together as well, after the encoding.
    """
    from PIL import Image

    paths = [os.fspath(item) for item in items if isinstance(item, (str, os.PathLike))]
    failures = []
    for path in paths:
        try:
            # Opened through open_regular: a FIFO or a device can neither block nor be read.
            with open_regular(path) as fh, Image.open(fh) as im:
                im.verify()
        except Exception as exc:  # PIL raises many types for corrupt files
            failures.append((path, why_unreadable(exc)))
    if failures:
        seen = {path for path, _ in failures}
        for path in paths:
            if path in seen:
                continue
            try:
                with open_regular(path) as fh, Image.open(fh) as im:
                    im.load()
            except Exception as exc:
                failures.append((path, why_unreadable(exc)))
        order = {path: i for i, path in enumerate(paths)}
        failures.sort(key=lambda f: order[f[0]])
        raise UnreadableImageError(failures)


def shortest_side_crop(preprocess):
    """``(size, crop)`` when ``preprocess`` starts by resizing the shorter side to ``size``
    and then cuts a centred ``crop x crop`` square (open_clip's default), else None."""
    from torchvision import transforms as T

    steps = list(getattr(preprocess, "transforms", ()))
    if len(steps) < 2 or not isinstance(steps[0], T.Resize) or steps[0].max_size is not None:
        return None
    size = steps[0].size
    size = size[0] if isinstance(size, (list, tuple)) and len(size) == 1 else size
    crop = steps[1].size if isinstance(steps[1], T.CenterCrop) else None
    if not isinstance(size, int) or crop is None or len(set(crop)) != 1:
        return None
    return size, int(crop[0])


def keep_cropped_part(image, size: int, crop: int):
    """The part of ``image`` that a shorter-side resize to ``size`` and a centred
    ``crop``-pixel square will use (with a margin for the resampling filter), for images
    of an extreme shape only.

    A 20,000 x 1 PNG of 143 bytes would otherwise be resized to 4,480,000 x 224 pixels
    (some 3 GB) before the crop keeps 224 x 224 of them. Images whose long side is within
    four times what is kept are returned as they are, so ordinary photos are embedded
    exactly as before.
    """
    w, h = image.size
    short, long = min(w, h), max(w, h)
    scale = size / short
    margin = 4.0 / min(scale, 1.0) + 2.0  # bicubic taps, wider when the resize shrinks
    keep = int(np.ceil(crop / scale + 2 * margin))
    if long <= 4 * keep:
        return image
    start = (long - keep) // 2
    box = (start, 0, start + keep, h) if w >= h else (0, start, w, start + keep)
    return image.crop(box)


class _ImageDataset(torch.utils.data.Dataset):
    """Loads (for paths), converts to RGB and preprocesses one image per index."""

    def __init__(self, items, preprocess, positions=None):
        self.items = items
        self.preprocess = preprocess
        self.crop_rule = shortest_side_crop(preprocess)
        # Where each item sits in the caller's X (some may have been found in a cache).
        self.positions = list(range(len(items))) if positions is None else list(positions)

    def _prepare(self, image):
        if self.crop_rule is not None:
            image = keep_cropped_part(image, *self.crop_rule)
        return self.preprocess(image)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        from PIL import Image

        item = self.items[index]
        try:
            if isinstance(item, (str, os.PathLike)):
                with Image.open(os.fspath(item)) as im:
                    im.load()
                    image = _to_rgb(im)
                    if image is im:
                        image = im.copy()
            elif isinstance(item, np.ndarray):
                image = _to_rgb(_array_to_pil(item, f"X[{self.positions[index]}]"))
            else:
                image = _to_rgb(item)
            return index, self._prepare(image), None
        except Exception as exc:  # reported together at the end, see _encode_images
            where = f"X[{self.positions[index]}]"
            name = os.fspath(item) if isinstance(item, (str, os.PathLike)) else where
            return index, None, (name, why_unreadable(exc))


def _collate(samples):
    indices = [i for i, t, _ in samples if t is not None]
    tensors = [t for _, t, _ in samples if t is not None]
    failures = [f for _, t, f in samples if t is None]
    batch = torch.stack(tensors) if tensors else None
    return indices, batch, failures


def encode_images(
    bundle, items, *, batch_size, num_workers=0, verbose=False, positions=None
) -> np.ndarray:
    """L2-normalised float32 embeddings of ``items`` (checked by :func:`as_image_items`).

    Images are read and preprocessed by a torch ``DataLoader`` (``num_workers`` processes)
    and embedded ``batch_size`` at a time, halving the batch on out-of-memory errors.
    Files that fail to decode are collected and reported together at the end.
    """
    dataset = _ImageDataset(items, bundle.preprocess, positions)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=bundle.device.type == "cuda",
    )
    out = np.zeros((len(items), bundle.embed_dim), dtype=np.float32)
    failures = []
    model = bundle.model

    def run(images):
        images = images.to(bundle.device, dtype=bundle.image_dtype, non_blocking=True)
        return model.encode_image(images).float().cpu()

    with (
        torch.inference_mode(),
        progress_bar(total=len(items), unit="img", desc="Embedding images", enabled=verbose) as bar,
    ):
        for indices, batch, bad in loader:
            failures.extend(bad)
            if batch is not None and not failures:
                parts, batch_size = run_with_oom_backoff(run, batch, batch_size)
                out[indices] = torch.cat(parts).numpy()
            bar.update(len(indices) + len(bad))
    if failures:
        raise UnreadableImageError(failures)
    return l2_normalize_rows(out, name="image embeddings", copy=False, zero="keep")
