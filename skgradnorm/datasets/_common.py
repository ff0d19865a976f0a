"""What the world generators share: names of classes, styles and generic nouns; helpers."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

CLASS_NAMES = (
    "dog",
    "cat",
    "bird",
    "fish",
    "horse",
    "car",
    "boat",
    "plane",
    "tree",
    "flower",
    "house",
    "bridge",
    "chair",
    "guitar",
    "clock",
    "shoe",
    "apple",
    "mountain",
    "lamp",
    "train",
    "frog",
    "truck",
    "cup",
    "book",
    "bicycle",
    "rabbit",
    "tiger",
    "violin",
    "castle",
    "kite",
)
STYLE_NAMES = (
    "blurry",
    "dark",
    "sketch",
    "close-up",
    "outdoor",
    "cartoon",
    "grainy",
    "overexposed",
    "painting",
    "aerial",
    "monochrome",
    "underwater",
)
GENERIC_NAMES = (
    "thing",
    "object",
    "photo",
    "picture",
    "image",
    "item",
    "scene",
    "view",
    "shot",
    "stuff",
)
VARIANT_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def unit(rng, n, d):
    v = rng.standard_normal((n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def normalize(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def check_count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def class_sizes(n_samples, n_classes, imbalance):
    """Power-law class sizes from ``imbalance`` down to 1, at least 2 images each."""
    weights = imbalance ** (-np.arange(n_classes) / max(n_classes - 1, 1))
    sizes = np.maximum(2, np.floor(weights / weights.sum() * n_samples).astype(int))
    sizes[0] += n_samples - sizes.sum()
    return sizes


def count(minimum):
    return [Interval(numbers.Integral, minimum, None, closed="left")]


WEIGHT = [Interval(numbers.Real, 0, None, closed="left")]
