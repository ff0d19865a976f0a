"""Thumbnails for the HTML report: image files downscaled into ``data:`` URIs."""

from __future__ import annotations

import base64
import functools
import io
import os

from .._clip._images import scaled_to_uint8

__all__ = ["THUMBNAIL_SIZE", "data_uri", "image_thumbnail", "placeholder_thumbnail"]

#: The longest side of a report thumbnail, in pixels.
THUMBNAIL_SIZE = 96


def data_uri(image, fmt="JPEG") -> str:
    """A ``data:image/jpeg`` (or ``image/png`` with ``fmt="PNG"``) URI of a PIL image."""
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, format="JPEG", quality=85, optimize=True)
        mime = "image/jpeg"
    else:
        # optimize=True made the demo's tiles 3x slower to encode (2.4 ms vs 0.8 ms) for
        # 16% fewer bytes; every member now gets a thumbnail on its cluster page.
        image.save(buf, format="PNG")
        mime = "image/png"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_thumbnail(path, size=THUMBNAIL_SIZE) -> str:
    """A ``data:image/jpeg;base64,...`` URI of the image file at ``path``, at most ``size`` px.

    The image is turned upright (EXIF), 16-bit and float images are scaled to 8 bits (as
    ``CLIPEncoder`` reads them), put on white where transparent, converted to RGB and
    downscaled (never upscaled) to fit in ``size`` x ``size``.
    """
    from PIL import Image, ImageOps

    with Image.open(os.fspath(path)) as im:
        if im.format == "JPEG":
            im.draft("RGB", (2 * size, 2 * size))  # decode at a reduced scale: much faster
        im = ImageOps.exif_transpose(im)
        im = scaled_to_uint8(im)  # 16-bit and float images as the encoder sees them
        if im.mode in ("RGBA", "LA", "P", "PA"):
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)
        im = im.convert("RGB")
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
        return data_uri(im)


@functools.lru_cache(maxsize=1)
def placeholder_thumbnail(size=THUMBNAIL_SIZE) -> str:
    """A grey ``data:image/png`` tile with a cross, for an image that could not be shown."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), (226, 229, 235))
    draw = ImageDraw.Draw(im)
    m = size // 3
    draw.line([(m, m), (size - m, size - m)], fill=(150, 156, 168), width=3)
    draw.line([(m, size - m), (size - m, m)], fill=(150, 156, 168), width=3)
    return data_uri(im, fmt="PNG")
