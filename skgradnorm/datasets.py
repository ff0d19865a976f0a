"""Synthetic CLIP-like worlds with a known answer, for tests, documentation and demos.

Three generators, and :func:`world_statistics`, which says how a world's (or real
features') neighbourhoods look: :func:`make_planted_world` and :func:`make_long_tail_world`
build every class from sub-classes that are islands in the image space;
:func:`make_calibrated_world` builds classes whose sub-classes overlap and that stay
connected in the nearest-neighbour graph, with neighbour purities like real CLIP features.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import (
    Bunch,
    check_array,
    check_consistent_length,
    check_random_state,
    column_or_1d,
)
from sklearn.utils._param_validation import Interval, validate_params

__all__ = [
    "make_calibrated_world",
    "make_long_tail_world",
    "make_planted_world",
    "world_statistics",
]

_CLASS_NAMES = (
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
_STYLE_NAMES = (
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
_GENERIC_NAMES = (
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
_VARIANT_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _unit(rng, n, d):
    v = rng.standard_normal((n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _normalize(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _check_count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _class_sizes(n_samples, n_classes, imbalance):
    """Power-law class sizes from ``imbalance`` down to 1, at least 2 images each."""
    weights = imbalance ** (-np.arange(n_classes) / max(n_classes - 1, 1))
    sizes = np.maximum(2, np.floor(weights / weights.sum() * n_samples).astype(int))
    sizes[0] += n_samples - sizes.sum()
    return sizes


def _count(minimum):
    return [Interval(numbers.Integral, minimum, None, closed="left")]


_WEIGHT = [Interval(numbers.Real, 0, None, closed="left")]


@validate_params(
    {
        "n_samples": _count(1),
        "n_classes": _count(1),
        "n_features": _count(2),
        "n_subclasses": _count(1),
        "n_styles": _count(0),
        "n_positive_nouns": _count(0),
        "n_style_nouns": _count(0),
        "n_blend_nouns": _count(0),
        "n_generic_nouns": _count(0),
        "n_random_nouns": _count(0),
        "image_class_strength": _WEIGHT,
        "image_subclass_strength": _WEIGHT,
        "image_style_strength": _WEIGHT,
        "image_noise": _WEIGHT,
        "text_class_strength": _WEIGHT,
        "text_subclass_strength": _WEIGHT,
        "text_noise": _WEIGHT,
        "modality_gap": _WEIGHT,
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_planted_world(
    n_samples=600,
    n_classes=5,
    *,
    n_features=128,
    n_subclasses=3,
    n_styles=4,
    n_positive_nouns=20,
    n_style_nouns=6,
    n_blend_nouns=6,
    n_generic_nouns=10,
    n_random_nouns=2000,
    image_class_strength=0.3,
    image_subclass_strength=1.0,
    image_style_strength=0.5,
    image_noise=0.8,
    text_class_strength=1.0,
    text_subclass_strength=0.6,
    text_noise=0.35,
    modality_gap=1.2,
    random_state=None,
):
    """Make a synthetic CLIP-like embedding space with planted classes and a noun bank.

    Like :func:`sklearn.datasets.make_blobs`, but for language-assisted clustering: image
    embeddings whose classes are hard to recover from the images alone, and a noun bank in
    which a few nouns are truly positive (close to one class) and most are not.

    The generative story, in ``n_features`` dimensions with random directions for every
    class ``mu_c``, sub-class ``nu_cj``, style ``sigma_s`` and the two modality offsets:

    - **images**: ``normalize(a mu_c + b nu_cj + g sigma_s + noise + gap_img)``, with
      the sub-class ``j`` and the style ``s`` drawn independently of the class. The class
      signal ``a`` is weaker than the sub-class and style signals, so images group by
      sub-class and style (nuisances a camera adds) and k-means on images alone confuses
      the classes.
    - **positive nouns** (``n_positive_nouns`` per sub-class): ``normalize(A mu_c + B nu_cj
      + noise + gap_txt)``, text being organised by meaning (``A > B``); each is close to
      one fine-grained sub-class, as WordNet hyponyms are to image clusters.
    - **hard negatives**: style nouns (``n_style_nouns`` per style, close to every class
      seen in that style), blend nouns (``n_blend_nouns`` per class, halfway between
      two classes) and generic nouns (``n_generic_nouns``, like "photo" or "thing":
      they share the images' own offset, so they are the nearest nouns of *every* image
      and carry no class information; plain retrieval over the whole bank picks them).
    - **random nouns** (``n_random_nouns``): unrelated directions, most of the bank.

    Parameters
    ----------
    n_samples : int, default=600
        Number of images.
    n_classes : int, default=5
        Number of classes (at most 30 readable names; more are numbered).
    n_features : int, default=128
        Dimension of the embedding space.
    n_subclasses : int, default=3
        Fine-grained sub-classes per class.
    n_styles : int, default=4
        Image styles, independent of the class (0 for none).
    n_positive_nouns : int, default=20
        Positive nouns per sub-class.
    n_style_nouns, n_blend_nouns : int, default=6
        Hard-negative nouns per style and per class.
    n_generic_nouns : int, default=10
        Generic nouns, close to every image.
    n_random_nouns : int, default=2000
        Unrelated nouns.
    image_class_strength, image_subclass_strength, image_style_strength, image_noise : float
        Weights of the image components (noise is isotropic, of this total norm).
    text_class_strength, text_subclass_strength, text_noise : float
        Weights of the positive-noun components.
    modality_gap : float, default=1.2
        Weight of the per-modality offsets, which keep image-text cosines low
        (about 0.2 to 0.3 for matching pairs, as with CLIP).
    random_state : int, RandomState instance or None, default=None
        Seed. Pass an int for reproducible output.

    Returns
    -------
    world : :class:`~sklearn.utils.Bunch`
        - ``data``: ndarray (n_samples, n_features), float32, L2-normalised images;
        - ``target``: ndarray (n_samples,), the class of each image;
        - ``target_names``: list of the class names;
        - ``noun_embeddings``: ndarray (n_nouns, n_features), float32, L2-normalised;
        - ``vocabulary``: list of n_nouns readable noun names;
        - ``noun_target``: ndarray (n_nouns,), the class of each positive noun, -1 for
          the others;
        - ``noun_kind``: ndarray (n_nouns,) of str: "positive", "style", "blend",
          "generic", "random";
        - ``subclass``, ``style``: ndarrays (n_samples,), the nuisance labels of the images;
        - ``DESCR``: a short description.

    Examples
    --------
    >>> from skgradnorm.datasets import make_planted_world
    >>> world = make_planted_world(n_samples=100, n_classes=3, random_state=0)
    >>> world.data.shape, world.noun_embeddings.shape
    ((100, 128), (2232, 128))
    >>> world.vocabulary[0], world.target_names
    ('dog 1a', ['dog', 'cat', 'bird'])
    """
    n_samples = _check_count(n_samples, "n_samples", 1)
    n_classes = _check_count(n_classes, "n_classes", 1)
    n_features = _check_count(n_features, "n_features", 2)
    n_subclasses = _check_count(n_subclasses, "n_subclasses", 1)
    n_styles = _check_count(n_styles, "n_styles", 0)
    n_positive_nouns = _check_count(n_positive_nouns, "n_positive_nouns", 0)
    n_style_nouns = _check_count(n_style_nouns, "n_style_nouns", 0)
    n_blend_nouns = _check_count(n_blend_nouns, "n_blend_nouns", 0)
    n_generic_nouns = _check_count(n_generic_nouns, "n_generic_nouns", 0)
    n_random_nouns = _check_count(n_random_nouns, "n_random_nouns", 0)
    rng = check_random_state(random_state)
    d = n_features

    def noise(n, scale):  # isotropic, of expected norm `scale`
        return scale * rng.standard_normal((n, d)) / np.sqrt(d)

    class_dirs = _unit(rng, n_classes, d)
    sub_dirs = _unit(rng, n_classes * n_subclasses, d).reshape(n_classes, n_subclasses, d)
    style_dirs = _unit(rng, max(n_styles, 1), d)
    gap_img, gap_txt = _unit(rng, 2, d)

    # Images: class, sub-class and style drawn independently; equal class sizes up to 1.
    target = np.arange(n_samples) % n_classes
    rng.shuffle(target)
    subclass = rng.randint(n_subclasses, size=n_samples)
    style = rng.randint(max(n_styles, 1), size=n_samples)
    images = (
        image_class_strength * class_dirs[target]
        + image_subclass_strength * sub_dirs[target, subclass]
        + (image_style_strength * style_dirs[style] if n_styles else 0.0)
        + noise(n_samples, image_noise)
        + modality_gap * gap_img
    )

    names = [_CLASS_NAMES[c] if c < len(_CLASS_NAMES) else f"class {c}" for c in range(n_classes)]
    nouns, kinds, noun_target, vocab = [], [], [], []

    def add(vectors, kind, cls, labels):
        nouns.append(vectors)
        kinds.extend([kind] * len(vectors))
        noun_target.extend([cls] * len(vectors) if np.isscalar(cls) else cls)
        vocab.extend(labels)

    for c in range(n_classes):
        for j in range(n_subclasses):
            n = n_positive_nouns
            vecs = (
                text_class_strength * class_dirs[c]
                + text_subclass_strength * sub_dirs[c, j]
                + noise(n, text_noise)
                + modality_gap * gap_txt
            )
            letters = [
                _VARIANT_LETTERS[r % 26] + ("" if r < 26 else str(r // 26)) for r in range(n)
            ]
            add(vecs, "positive", c, [f"{names[c]} {j + 1}{letter}" for letter in letters])
    for s in range(n_styles):
        vecs = (
            text_class_strength * style_dirs[s]
            + noise(n_style_nouns, text_noise)
            + modality_gap * gap_txt
        )
        style_name = _STYLE_NAMES[s] if s < len(_STYLE_NAMES) else f"style {s}"
        add(vecs, "style", -1, [f"{style_name} look {r + 1}" for r in range(n_style_nouns)])
    if n_classes > 1:
        for c in range(n_classes):
            other = (c + 1 + rng.randint(n_classes - 1, size=n_blend_nouns)) % n_classes
            blend = _normalize(class_dirs[c] + class_dirs[other])
            vecs = (
                text_class_strength * blend
                + noise(n_blend_nouns, text_noise)
                + modality_gap * gap_txt
            )
            add(
                vecs,
                "blend",
                -1,
                [f"{names[c]}-{names[o]} blend {r + 1}" for r, o in enumerate(other)],
            )
    # Generic nouns point along the images' own offset: near every image, specific to none.
    vecs = modality_gap * gap_img + noise(n_generic_nouns, text_noise) + modality_gap * gap_txt
    add(
        vecs,
        "generic",
        -1,
        [
            _GENERIC_NAMES[r % len(_GENERIC_NAMES)]
            + ("" if r < len(_GENERIC_NAMES) else f" {r // len(_GENERIC_NAMES) + 1}")
            for r in range(n_generic_nouns)
        ],
    )
    vecs = text_class_strength * _unit(rng, n_random_nouns, d) + modality_gap * gap_txt
    add(vecs, "random", -1, [f"random noun {r + 1}" for r in range(n_random_nouns)])

    noun_embeddings = _normalize(np.vstack(nouns)).astype(np.float32)
    return Bunch(
        data=_normalize(images).astype(np.float32),
        target=target,
        target_names=names,
        noun_embeddings=noun_embeddings,
        vocabulary=vocab,
        noun_target=np.asarray(noun_target, dtype=np.int64),
        noun_kind=np.asarray(kinds),
        subclass=subclass,
        style=style,
        DESCR=(
            f"Planted world: {n_samples} images of {n_classes} classes x {n_subclasses} "
            f"sub-classes x {n_styles} styles in {d} dimensions; {len(vocab)} nouns of which "
            f"{n_classes * n_subclasses * n_positive_nouns} are positive."
        ),
    )


@validate_params(
    {
        "n_samples": _count(2),
        "n_classes": _count(1),
        "n_features": _count(2),
        "max_modes": _count(1),
        "imbalance": [Interval(numbers.Real, 1, None, closed="left")],
        "class_overlap": [Interval(numbers.Real, 0, 1, closed="left")],
        "n_positive_nouns": _count(1),
        "confusion": _WEIGHT,
        "n_generic_nouns": _count(0),
        "n_random_nouns": _count(0),
        "image_noise": _WEIGHT,
        "modality_gap": _WEIGHT,
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_long_tail_world(
    n_samples=600,
    n_classes=8,
    *,
    n_features=128,
    max_modes=4,
    imbalance=5.0,
    class_overlap=0.35,
    n_positive_nouns=8,
    confusion=0.35,
    n_generic_nouns=10,
    n_random_nouns=1000,
    image_noise=0.9,
    modality_gap=1.2,
    random_state=None,
):
    """Make a harder planted world: unbalanced classes that overlap, and confusable nouns.

    A second family of synthetic CLIP-like spaces, less friendly than
    :func:`make_planted_world`, to check that a conclusion does not hold for one generator
    only:

    - **unbalanced classes**: class sizes follow a power law, the largest class
      ``imbalance`` times the smallest (at least 2 images per class);
    - **a varying number of visual modes** per class, from 1 to ``max_modes``;
    - **overlapping classes**: every class direction shares a component of weight
      ``class_overlap`` with one common direction, so classes are closer to each other
      than random directions;
    - **confusable nouns**: each positive noun of a mode is pulled towards a random other
      class with weight ``confusion`` (``0``: clean nouns);
    - generic nouns along the images' own offset, and random nouns, as in
      :func:`make_planted_world`; there are no style or blend nouns.

    Parameters
    ----------
    n_samples : int, default=600
        Number of images (at least ``2 * n_classes``).
    n_classes : int, default=8
        Number of classes.
    n_features : int, default=128
        Dimension of the embedding space.
    max_modes : int, default=4
        Most visual modes (sub-classes) of a class; each class draws its number in
        ``[1, max_modes]``.
    imbalance : float, default=5.0
        Ratio of the largest to the smallest class size (``>= 1``).
    class_overlap : float, default=0.35
        Weight, in ``[0, 1)``, of the component all classes share.
    n_positive_nouns : int, default=8
        Positive nouns per mode.
    confusion : float, default=0.35
        Pull of each positive noun towards another class, ``>= 0``.
    n_generic_nouns : int, default=10
        Generic nouns, close to every image.
    n_random_nouns : int, default=1000
        Unrelated nouns.
    image_noise : float, default=0.9
        Norm of the isotropic image noise.
    modality_gap : float, default=1.2
        Weight of the per-modality offsets.
    random_state : int, RandomState instance or None, default=None
        Seed. Pass an int for reproducible output.

    Returns
    -------
    world : :class:`~sklearn.utils.Bunch`
        The fields of :func:`make_planted_world` but ``style``: ``data``, ``target``,
        ``target_names``, ``noun_embeddings``, ``vocabulary``, ``noun_target``,
        ``noun_kind`` (``"positive"``, ``"generic"``, ``"random"``), ``subclass`` and
        ``DESCR``.

    See Also
    --------
    make_planted_world : the friendlier family, with styles and hard-negative nouns.

    Examples
    --------
    >>> from skgradnorm.datasets import make_long_tail_world
    >>> world = make_long_tail_world(n_samples=200, n_classes=4, random_state=0)
    >>> world.data.shape
    (200, 128)
    >>> int(world.target.min()), int(world.target.max())
    (0, 3)
    """
    n_classes = _check_count(n_classes, "n_classes", 1)
    n_samples = _check_count(n_samples, "n_samples", 2 * n_classes)
    n_features = _check_count(n_features, "n_features", 2)
    max_modes = _check_count(max_modes, "max_modes", 1)
    n_positive_nouns = _check_count(n_positive_nouns, "n_positive_nouns", 1)
    n_generic_nouns = _check_count(n_generic_nouns, "n_generic_nouns", 0)
    n_random_nouns = _check_count(n_random_nouns, "n_random_nouns", 0)
    if not imbalance >= 1:
        raise ValueError(f"imbalance must be >= 1 (largest / smallest class); got {imbalance!r}.")
    if not 0 <= class_overlap < 1:
        raise ValueError(f"class_overlap must be in [0, 1); got {class_overlap!r}.")
    if not confusion >= 0:
        raise ValueError(f"confusion must be >= 0; got {confusion!r}.")
    rng = check_random_state(random_state)
    d = n_features

    def noise(n, scale):
        return scale * rng.standard_normal((n, d)) / np.sqrt(d)

    shared = _unit(rng, 1, d)[0]
    class_dirs = _normalize((1 - class_overlap) * _unit(rng, n_classes, d) + class_overlap * shared)
    n_modes = rng.randint(1, max_modes + 1, size=n_classes)
    gap_img, gap_txt = _unit(rng, 2, d)

    sizes = _class_sizes(n_samples, n_classes, imbalance)
    target = rng.permutation(np.repeat(np.arange(n_classes), sizes))
    mode_dirs = [_unit(rng, m, d) for m in n_modes]
    subclass = np.array([rng.randint(n_modes[c]) for c in target])
    mode_vecs = np.stack([mode_dirs[c][j] for c, j in zip(target, subclass, strict=True)])
    images = (
        0.35 * class_dirs[target]
        + 1.0 * mode_vecs
        + noise(n_samples, image_noise)
        + modality_gap * gap_img
    )

    names = [_CLASS_NAMES[c] if c < len(_CLASS_NAMES) else f"class {c}" for c in range(n_classes)]
    nouns, kinds, noun_target, vocab = [], [], [], []
    for c in range(n_classes):
        for j in range(n_modes[c]):
            other = (c + 1 + rng.randint(max(n_classes - 1, 1), size=n_positive_nouns)) % n_classes
            vecs = (
                class_dirs[c]
                + 0.6 * mode_dirs[c][j]
                + confusion * class_dirs[other]
                + noise(n_positive_nouns, 0.35)
                + modality_gap * gap_txt
            )
            nouns.append(vecs)
            kinds += ["positive"] * n_positive_nouns
            noun_target += [c] * n_positive_nouns
            vocab += [
                f"{names[c]} {j + 1}{_VARIANT_LETTERS[r % 26]}{r // 26 or ''}"
                for r in range(n_positive_nouns)
            ]
    nouns.append(modality_gap * gap_img + noise(n_generic_nouns, 0.35) + modality_gap * gap_txt)
    kinds += ["generic"] * n_generic_nouns
    vocab += [f"generic {r + 1}" for r in range(n_generic_nouns)]
    nouns.append(_unit(rng, n_random_nouns, d) + modality_gap * gap_txt)
    kinds += ["random"] * n_random_nouns
    vocab += [f"random noun {r + 1}" for r in range(n_random_nouns)]
    noun_target += [-1] * (n_generic_nouns + n_random_nouns)

    return Bunch(
        data=_normalize(images).astype(np.float32),
        target=target,
        target_names=names,
        noun_embeddings=_normalize(np.vstack(nouns)).astype(np.float32),
        noun_target=np.asarray(noun_target, dtype=np.int64),
        noun_kind=np.asarray(kinds),
        vocabulary=vocab,
        subclass=subclass,
        DESCR=(
            f"Long-tail world: {n_samples} images of {n_classes} unbalanced, overlapping "
            f"classes ({int(n_modes.sum())} modes) in {d} dimensions; {len(vocab)} nouns of "
            f"which {int(n_modes.sum()) * n_positive_nouns} are positive, confusion "
            f"{confusion}."
        ),
    )


#: Weight of the mode direction in a positive noun of :func:`make_calibrated_world` (the
#: class direction has weight 1): text is organised by meaning, the class first.
_TEXT_MODE_STRENGTH = 0.5
#: Weight of the variation direction in a style noun of :func:`make_calibrated_world`.
_STYLE_STRENGTH = 0.6
#: Weight, relative to ``modality_gap``, of the images' offset in a generic noun of
#: :func:`make_calibrated_world`.
_GENERIC_STRENGTH = 0.8


@validate_params(
    {
        "n_samples": _count(2),
        "n_classes": _count(1),
        "n_features": _count(2),
        "max_modes": _count(1),
        "superclass_size": _count(1),
        "class_similarity": [Interval(numbers.Real, 0, 1, closed="left")],
        "class_separation": _WEIGHT,
        "mode_spread": _WEIGHT,
        "image_noise": _WEIGHT,
        "noise_decay": _WEIGHT,
        "noise_heterogeneity": [Interval(numbers.Real, 0, 1, closed="left")],
        "entanglement": [Interval(numbers.Real, 0, 1, closed="both")],
        "alignment": [Interval(numbers.Real, 0, 1, closed="both")],
        "imbalance": [Interval(numbers.Real, 1, None, closed="left")],
        "n_positive_nouns": _count(1),
        "n_style_directions": _count(0),
        "n_style_nouns": _count(0),
        "n_blend_nouns": _count(0),
        "n_generic_nouns": _count(0),
        "n_random_nouns": _count(0),
        "text_noise": _WEIGHT,
        "modality_gap": _WEIGHT,
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_calibrated_world(
    n_samples=2000,
    n_classes=10,
    *,
    n_features=128,
    max_modes=3,
    superclass_size=2,
    class_similarity=0.4,
    class_separation=1.0,
    mode_spread=0.8,
    image_noise=1.9,
    noise_decay=1.0,
    noise_heterogeneity=0.3,
    entanglement=0.5,
    alignment=0.8,
    imbalance=1.0,
    n_positive_nouns=10,
    n_style_directions=6,
    n_style_nouns=4,
    n_blend_nouns=4,
    n_generic_nouns=10,
    n_random_nouns=2000,
    text_noise=0.35,
    modality_gap=1.2,
    random_state=None,
):
    """Make a CLIP-like world whose neighbourhoods look like real features.

    In :func:`make_planted_world` and :func:`make_long_tail_world` every sub-class is an
    island: the noise is isotropic in all ``n_features`` dimensions, so distances
    concentrate and nearly every image's neighbours share its sub-class (20-NN purity
    1.00, and up to some 40 connected components in the 50-NN graph). Real CLIP features
    are not like that: their 20-NN purity is high but imperfect, a class is one connected
    region whose visual modes overlap, and k-means on the images alone lands well below
    perfect. This generator is calibrated to that picture: at its defaults (2,000 images,
    10 classes; 12 seeds) the 20-NN purity is 0.87 (0.83 to 0.90), the 50-NN graph has
    one component, spherical k-means on the images alone reaches an ACC of 0.76 (0.64 to
    0.85), and the nearest positive noun names an image's class 90% of the time (CLIP
    ViT-B/32's zero-shot accuracy on CIFAR-10 is 0.89). ``benchmarks/RESULTS.md`` gives
    the measured figures of several settings.

    It is a separate generator rather than an option of the planted worlds because what
    makes the difference, the spectrum of the within-class variation and where the class
    directions lie in it, changes every step of their generative story; the planted
    worlds stay as they are (their islands are a useful extreme case).

    The generative story, in ``n_features`` dimensions:

    - **within-class variation** (pose, light, background), common to every class:
      Gaussian along the coordinate axes ``e_1, e_2, ...`` with variances decaying as
      ``i ** -noise_decay`` (embedding spectra decay roughly as a power law; 0 gives the
      planted worlds' isotropic noise), of expected norm ``image_noise`` times a
      per-class factor (``n_classes`` evenly spaced values of ``[1 - h, 1 + h]``,
      shuffled; ``h = noise_heterogeneity``: some classes are tighter than others). Its
      strong leading directions make the modes overlap and keep the classes connected,
      and lead k-means on the images astray, while nearby images still mostly share their
      class;
    - **directions**: every direction below is a random unit vector, a share
      ``entanglement`` of it drawn from that spectrum (so it lies partly along the
      leading variation directions: what tells classes apart is also what varies most
      within them) and the rest isotropic;
    - **semantic directions**, shared by images and text: classes are grouped at random
      into superclasses of ``superclass_size``; class ``c`` has the unit direction
      ``s_c = normalize(sqrt(rho) g_G(c) + sqrt(1 - rho) r_c)`` (``rho =
      class_similarity``: sibling classes are closer, as dog and cat are), and each of its
      ``M_c`` visual modes (``M_c`` drawn in ``[1, max_modes]``) a direction ``m_cj``;
    - **image directions**: ``a_c = normalize(sqrt(alpha) s_c + sqrt(1 - alpha) p_c)``
      and likewise ``b_cj`` from ``m_cj``, with private directions ``p``: ``alpha =
      alignment`` is the share of the image geometry the text can see (1: the two spaces
      agree; 0: the nouns tell nothing about the images);
    - **images**: ``normalize(G gap_img + r normalize(class_separation a_c + mode_spread
      b_cj + variation))``, ``G = modality_gap``, ``r`` the content's typical norm
      ``sqrt(class_separation**2 + mode_spread**2 + image_noise**2)``: every image has
      the same share of the modality offset, whatever its class's spread;
    - **positive nouns** (``n_positive_nouns`` per mode): ``normalize(G gap_txt + s_c +
      0.5 m_cj + noise)``, with isotropic noise of norm ``text_noise``;
    - **hard negatives**: style nouns (``n_style_nouns`` for each sign of each of the
      ``n_style_directions`` leading variation directions: close to the images of every
      class that vary that way), blend nouns (``n_blend_nouns`` per class, halfway between
      the class and a sibling of its superclass, or another class when it has none) and
      generic nouns (``G gap_txt + 0.8 G gap_img + noise``: the nearest nouns of 30% to
      50% of the images, specific to none);
    - **random nouns** (``n_random_nouns``): unrelated directions, most of the bank.

    Difficulty is swept mainly with ``image_noise`` (neighbour purity and image-only
    accuracy fall as it grows), ``alignment`` (how much the nouns can help) and
    ``class_similarity`` (how confusable sibling classes are). The statistics depend on
    the number of images too (more images, denser neighbourhoods), so measure them with
    :func:`world_statistics` at the size you use.

    Parameters
    ----------
    n_samples : int, default=2000
        Number of images (at least ``2 * n_classes``).
    n_classes : int, default=10
        Number of classes (at most 30 readable names; more are numbered).
    n_features : int, default=128
        Dimension of the embedding space.
    max_modes : int, default=3
        Most visual modes (sub-classes) of a class; each class draws its number in
        ``[1, max_modes]``.
    superclass_size : int, default=2
        Classes per superclass (the last superclass may be smaller); 1 for none.
    class_similarity : float, default=0.4
        Share, in ``[0, 1)``, of its superclass's direction in a class's direction.
    class_separation : float, default=1.0
        Weight of the class direction in the images.
    mode_spread : float, default=0.8
        Weight of the mode direction in the images.
    image_noise : float, default=1.9
        Expected norm of the within-class variation (before the per-class factor).
    noise_decay : float, default=1.0
        Exponent of the power-law spectrum of the variation (0: isotropic).
    noise_heterogeneity : float, default=0.3
        Half-width, in ``[0, 1)``, of the range of the per-class variation factor.
    entanglement : float, default=0.5
        Share, in ``[0, 1]``, of the variation's spectrum in every superclass, class and
        mode direction (0: isotropic directions, which the variation barely touches; the
        nouns then name almost every image's class).
    alignment : float, default=0.8
        Share, in ``[0, 1]``, of the semantic directions in the image directions.
    imbalance : float, default=1.0
        Ratio of the largest to the smallest class size (``>= 1``; 1: balanced).
    n_positive_nouns : int, default=10
        Positive nouns per mode.
    n_style_directions : int, default=6
        Leading variation directions that get style nouns (at most ``n_features``).
    n_style_nouns : int, default=4
        Style nouns per direction and sign.
    n_blend_nouns : int, default=4
        Blend nouns per class (none when there is one class).
    n_generic_nouns : int, default=10
        Generic nouns.
    n_random_nouns : int, default=2000
        Unrelated nouns.
    text_noise : float, default=0.35
        Norm of the isotropic noise of every non-random noun.
    modality_gap : float, default=1.2
        Weight of the per-modality offsets, which keep image-text cosines low (about 0.2
        to 0.3 for matching pairs, as with CLIP).
    random_state : int, RandomState instance or None, default=None
        Seed. Pass an int for reproducible output.

    Returns
    -------
    world : :class:`~sklearn.utils.Bunch`
        The fields of :func:`make_long_tail_world` (``data``, ``target``,
        ``target_names``, ``noun_embeddings``, ``vocabulary``, ``noun_target``,
        ``subclass`` and ``DESCR``; ``noun_kind`` is one of ``"positive"``, ``"style"``,
        ``"blend"``, ``"generic"``, ``"random"``), and ``superclass``: ndarray
        (n_classes,), the superclass of each class.

    See Also
    --------
    world_statistics : neighbour purity and connectivity of a world, or of real features.
    make_planted_world : classes made of separate islands.

    Examples
    --------
    >>> from skgradnorm.datasets import make_calibrated_world, world_statistics
    >>> world = make_calibrated_world(n_samples=500, n_classes=5, random_state=0)
    >>> world.data.shape
    (500, 128)
    >>> stats = world_statistics(world.data, world.target)
    >>> 0.5 < stats["knn_purity"] < 1.0, stats["n_components"]
    (True, 1)
    """
    n_classes = _check_count(n_classes, "n_classes", 1)
    n_samples = _check_count(n_samples, "n_samples", 2 * n_classes)
    n_features = _check_count(n_features, "n_features", 2)
    max_modes = _check_count(max_modes, "max_modes", 1)
    if n_style_directions > n_features:
        raise ValueError(
            f"n_style_directions={n_style_directions} exceeds n_features={n_features}; the "
            f"variation has only n_features directions: pass at most {n_features}."
        )
    rng = check_random_state(random_state)
    d = n_features

    def noise(n, scale):  # isotropic, of expected norm `scale`
        return scale * rng.standard_normal((n, d)) / np.sqrt(d)

    # The within-class variation: power-law variances along the coordinate axes. Every other
    # direction is drawn isotropically (or from this spectrum), so a random orthonormal basis
    # would only rotate the whole world, leaving every cosine's distribution as it is.
    variances = np.arange(1, d + 1, dtype=np.float64) ** -float(noise_decay)
    variances /= variances.sum()

    def directions(n):  # unit directions, a share `entanglement` drawn from the spectrum
        spectral = _normalize(rng.standard_normal((n, d)) * np.sqrt(variances))
        return _normalize(
            np.sqrt(entanglement) * spectral + np.sqrt(1 - entanglement) * _unit(rng, n, d)
        )

    # Semantic directions (shared by both modalities), then the images' own.
    superclass = rng.permutation(np.arange(n_classes) // superclass_size)
    super_dirs = directions(int(superclass.max()) + 1)
    rho = float(class_similarity)
    sem = _normalize(
        np.sqrt(rho) * super_dirs[superclass] + np.sqrt(1 - rho) * directions(n_classes)
    )
    n_modes = rng.randint(1, max_modes + 1, size=n_classes)
    sem_modes = [directions(m) for m in n_modes]
    a, b = np.sqrt(alignment), np.sqrt(1 - alignment)
    image_class = _normalize(a * sem + b * directions(n_classes))
    image_modes = [_normalize(a * m + b * directions(len(m))) for m in sem_modes]

    class_scale = rng.permutation(
        np.linspace(1 - noise_heterogeneity, 1 + noise_heterogeneity, n_classes)
    )
    gap_img, gap_txt = _unit(rng, 2, d)

    target = rng.permutation(
        np.repeat(np.arange(n_classes), _class_sizes(n_samples, n_classes, imbalance))
    )
    subclass = np.array([rng.randint(n_modes[c]) for c in target])
    mode_vecs = np.stack([image_modes[c][j] for c, j in zip(target, subclass, strict=True)])
    variation = rng.standard_normal((n_samples, d)) * np.sqrt(variances)
    content = (
        class_separation * image_class[target]
        + mode_spread * mode_vecs
        + image_noise * class_scale[target, None] * variation
    )
    # Every image's content gets the same norm, so that its share of the modality offset
    # (its cosine to a generic noun) does not depend on how spread its class is.
    content_norm = np.sqrt(class_separation**2 + mode_spread**2 + image_noise**2)
    images = modality_gap * gap_img + content_norm * _normalize(content)

    names = [_CLASS_NAMES[c] if c < len(_CLASS_NAMES) else f"class {c}" for c in range(n_classes)]
    nouns, kinds, noun_target, vocab = [], [], [], []

    def add(vectors, kind, cls, labels):
        nouns.append(vectors)
        kinds.extend([kind] * len(vectors))
        noun_target.extend([cls] * len(vectors))
        vocab.extend(labels)

    for c in range(n_classes):
        for j in range(n_modes[c]):
            vecs = (
                modality_gap * gap_txt
                + sem[c]
                + _TEXT_MODE_STRENGTH * sem_modes[c][j]
                + noise(n_positive_nouns, text_noise)
            )
            letters = [
                _VARIANT_LETTERS[r % 26] + ("" if r < 26 else str(r // 26))
                for r in range(n_positive_nouns)
            ]
            add(vecs, "positive", c, [f"{names[c]} {j + 1}{letter}" for letter in letters])
    for s in range(2 * n_style_directions):
        sign = 1.0 if s % 2 == 0 else -1.0
        vecs = (
            modality_gap * gap_txt
            + _STYLE_STRENGTH * sign * np.eye(d)[s // 2]
            + noise(n_style_nouns, text_noise)
        )
        style_name = _STYLE_NAMES[s] if s < len(_STYLE_NAMES) else f"style {s}"
        add(vecs, "style", -1, [f"{style_name} look {r + 1}" for r in range(n_style_nouns)])
    if n_classes > 1:
        for c in range(n_classes):
            siblings = np.flatnonzero((superclass == superclass[c]) & (np.arange(n_classes) != c))
            if siblings.size == 0:
                siblings = np.delete(np.arange(n_classes), c)
            other = siblings[rng.randint(siblings.size, size=n_blend_nouns)]
            vecs = (
                modality_gap * gap_txt
                + _normalize(sem[c] + sem[other])
                + noise(n_blend_nouns, text_noise)
            )
            add(
                vecs,
                "blend",
                -1,
                [f"{names[c]}-{names[o]} blend {r + 1}" for r, o in enumerate(other)],
            )
    vecs = (
        _GENERIC_STRENGTH * modality_gap * gap_img
        + noise(n_generic_nouns, text_noise)
        + modality_gap * gap_txt
    )
    add(
        vecs,
        "generic",
        -1,
        [
            _GENERIC_NAMES[r % len(_GENERIC_NAMES)]
            + ("" if r < len(_GENERIC_NAMES) else f" {r // len(_GENERIC_NAMES) + 1}")
            for r in range(n_generic_nouns)
        ],
    )
    vecs = _unit(rng, n_random_nouns, d) + modality_gap * gap_txt
    add(vecs, "random", -1, [f"random noun {r + 1}" for r in range(n_random_nouns)])

    return Bunch(
        data=_normalize(images).astype(np.float32),
        target=target,
        target_names=names,
        noun_embeddings=_normalize(np.vstack(nouns)).astype(np.float32),
        vocabulary=vocab,
        noun_target=np.asarray(noun_target, dtype=np.int64),
        noun_kind=np.asarray(kinds),
        subclass=subclass,
        superclass=superclass,
        DESCR=(
            f"Calibrated world: {n_samples} images of {n_classes} classes "
            f"({int(n_modes.sum())} overlapping modes, superclasses of {superclass_size}) in "
            f"{d} dimensions, image noise {image_noise} (spectrum decay {noise_decay}), "
            f"alignment {alignment}; {len(vocab)} nouns of which "
            f"{int(n_modes.sum()) * n_positive_nouns} are positive."
        ),
    )


@validate_params(
    {
        "X": ["array-like"],
        "target": ["array-like"],
        "subclass": ["array-like", None],
        "n_neighbors": _count(1),
        "graph_k": _count(1),
    },
    prefer_skip_nested_validation=True,
)
def world_statistics(X, target, subclass=None, *, n_neighbors=20, graph_k=50):
    """How the neighbourhoods of labelled embeddings look: purity and connectivity.

    Tells islands from connected classes. Methods that learn from neighbours (TAC's
    trained heads, :class:`~skgradnorm.MutualDistillationClusterer`) need a class to be
    one connected neighbourhood; k-means needs it compact. Use it to compare a synthetic
    world with real features, or to describe the worlds of a benchmark beside its scores.

    Neighbours are by cosine similarity (rows are L2-normalised here), a sample never
    being its own neighbour (``sklearn.neighbors.NearestNeighbors``, exact search).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings (more than ``max(n_neighbors, graph_k)`` rows, none all zero).
    target : array-like of shape (n_samples,)
        Class labels.
    subclass : array-like of shape (n_samples,) or None, default=None
        Sub-class labels, read within each class (the pair (class, sub-class) names a
        sub-class, as in the ``subclass`` field of this module's worlds).
    n_neighbors : int, default=20
        Neighbours of the purity statistics.
    graph_k : int, default=50
        Neighbours per sample of the graph whose components are counted.

    Returns
    -------
    stats : dict
        - ``knn_purity``: the mean over samples of the fraction of their ``n_neighbors``
          nearest neighbours in their class;
        - ``subclass_purity``: the same for sub-classes (NaN when ``subclass`` is None);
        - ``n_components``: the number of connected components of the symmetrised
          ``graph_k``-nearest-neighbour graph (``scipy.sparse.csgraph``). 1 means that
          the whole collection is one connected neighbourhood; around the number of
          sub-classes, that classes are made of islands.

    Examples
    --------
    >>> import numpy as np
    >>> from skgradnorm.datasets import world_statistics
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(size=(60, 8)) + 5 * np.eye(8)[0],
    ...                rng.normal(size=(60, 8)) - 5 * np.eye(8)[0]])
    >>> world_statistics(X, np.repeat([0, 1], 60), graph_k=10)
    {'knn_purity': 1.0, 'subclass_purity': nan, 'n_components': 2}
    """
    X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
    target = column_or_1d(target)
    check_consistent_length(X, target)
    k = max(n_neighbors, graph_k)
    if X.shape[0] <= k:
        raise ValueError(
            f"world_statistics needs more than max(n_neighbors, graph_k) = {k} samples; got "
            f"{X.shape[0]}. Pass smaller n_neighbors / graph_k or more samples."
        )
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("X has all-zero rows, which have no cosine neighbours; drop them first.")
    neighbors = NearestNeighbors(n_neighbors=k).fit(X / norms).kneighbors(return_distance=False)
    _, labels = np.unique(target, return_inverse=True)
    knn_purity = float(np.mean(labels[neighbors[:, :n_neighbors]] == labels[:, None]))
    subclass_purity = float("nan")
    if subclass is not None:
        subclass = column_or_1d(subclass)
        check_consistent_length(X, subclass)
        _, _, sub = np.unique(
            np.stack([labels, np.unique(subclass, return_inverse=True)[1]], axis=1),
            axis=0,
            return_index=True,
            return_inverse=True,
        )
        sub = sub.ravel()
        subclass_purity = float(np.mean(sub[neighbors[:, :n_neighbors]] == sub[:, None]))
    n = X.shape[0]
    graph = csr_matrix(
        (
            np.ones(n * graph_k),
            neighbors[:, :graph_k].ravel(),
            np.arange(0, n * graph_k + 1, graph_k),
        ),
        shape=(n, n),
    )
    n_components, _ = connected_components(graph, directed=False)
    return {
        "knn_purity": knn_purity,
        "subclass_purity": subclass_purity,
        "n_components": int(n_components),
    }
