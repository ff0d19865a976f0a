"""Planted worlds: every class a set of sub-classes that are islands in the image space."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ._common import (
    CLASS_NAMES,
    GENERIC_NAMES,
    STYLE_NAMES,
    VARIANT_LETTERS,
    WEIGHT,
    check_count,
    class_sizes,
    count,
    normalize,
    unit,
)


@validate_params(
    {
        "n_samples": count(1),
        "n_classes": count(1),
        "n_features": count(2),
        "n_subclasses": count(1),
        "n_styles": count(0),
        "n_positive_nouns": count(0),
        "n_style_nouns": count(0),
        "n_blend_nouns": count(0),
        "n_generic_nouns": count(0),
        "n_random_nouns": count(0),
        "image_class_strength": WEIGHT,
        "image_subclass_strength": WEIGHT,
        "image_style_strength": WEIGHT,
        "image_noise": WEIGHT,
        "text_class_strength": WEIGHT,
        "text_subclass_strength": WEIGHT,
        "text_noise": WEIGHT,
        "modality_gap": WEIGHT,
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
    n_samples = check_count(n_samples, "n_samples", 1)
    n_classes = check_count(n_classes, "n_classes", 1)
    n_features = check_count(n_features, "n_features", 2)
    n_subclasses = check_count(n_subclasses, "n_subclasses", 1)
    n_styles = check_count(n_styles, "n_styles", 0)
    n_positive_nouns = check_count(n_positive_nouns, "n_positive_nouns", 0)
    n_style_nouns = check_count(n_style_nouns, "n_style_nouns", 0)
    n_blend_nouns = check_count(n_blend_nouns, "n_blend_nouns", 0)
    n_generic_nouns = check_count(n_generic_nouns, "n_generic_nouns", 0)
    n_random_nouns = check_count(n_random_nouns, "n_random_nouns", 0)
    rng = check_random_state(random_state)
    d = n_features

    def noise(n, scale):  # isotropic, of expected norm `scale`
        return scale * rng.standard_normal((n, d)) / np.sqrt(d)

    class_dirs = unit(rng, n_classes, d)
    sub_dirs = unit(rng, n_classes * n_subclasses, d).reshape(n_classes, n_subclasses, d)
    style_dirs = unit(rng, max(n_styles, 1), d)
    gap_img, gap_txt = unit(rng, 2, d)

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

    names = [CLASS_NAMES[c] if c < len(CLASS_NAMES) else f"class {c}" for c in range(n_classes)]
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
            letters = [VARIANT_LETTERS[r % 26] + ("" if r < 26 else str(r // 26)) for r in range(n)]
            add(vecs, "positive", c, [f"{names[c]} {j + 1}{letter}" for letter in letters])
    for s in range(n_styles):
        vecs = (
            text_class_strength * style_dirs[s]
            + noise(n_style_nouns, text_noise)
            + modality_gap * gap_txt
        )
        style_name = STYLE_NAMES[s] if s < len(STYLE_NAMES) else f"style {s}"
        add(vecs, "style", -1, [f"{style_name} look {r + 1}" for r in range(n_style_nouns)])
    if n_classes > 1:
        for c in range(n_classes):
            other = (c + 1 + rng.randint(n_classes - 1, size=n_blend_nouns)) % n_classes
            blend = normalize(class_dirs[c] + class_dirs[other])
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
            GENERIC_NAMES[r % len(GENERIC_NAMES)]
            + ("" if r < len(GENERIC_NAMES) else f" {r // len(GENERIC_NAMES) + 1}")
            for r in range(n_generic_nouns)
        ],
    )
    vecs = text_class_strength * unit(rng, n_random_nouns, d) + modality_gap * gap_txt
    add(vecs, "random", -1, [f"random noun {r + 1}" for r in range(n_random_nouns)])

    noun_embeddings = normalize(np.vstack(nouns)).astype(np.float32)
    return Bunch(
        data=normalize(images).astype(np.float32),
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
        "n_samples": count(2),
        "n_classes": count(1),
        "n_features": count(2),
        "max_modes": count(1),
        "imbalance": [Interval(numbers.Real, 1, None, closed="left")],
        "class_overlap": [Interval(numbers.Real, 0, 1, closed="left")],
        "n_positive_nouns": count(1),
        "confusion": WEIGHT,
        "n_generic_nouns": count(0),
        "n_random_nouns": count(0),
        "image_noise": WEIGHT,
        "modality_gap": WEIGHT,
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
    n_classes = check_count(n_classes, "n_classes", 1)
    n_samples = check_count(n_samples, "n_samples", 2 * n_classes)
    n_features = check_count(n_features, "n_features", 2)
    max_modes = check_count(max_modes, "max_modes", 1)
    n_positive_nouns = check_count(n_positive_nouns, "n_positive_nouns", 1)
    n_generic_nouns = check_count(n_generic_nouns, "n_generic_nouns", 0)
    n_random_nouns = check_count(n_random_nouns, "n_random_nouns", 0)
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

    shared = unit(rng, 1, d)[0]
    class_dirs = normalize((1 - class_overlap) * unit(rng, n_classes, d) + class_overlap * shared)
    n_modes = rng.randint(1, max_modes + 1, size=n_classes)
    gap_img, gap_txt = unit(rng, 2, d)

    sizes = class_sizes(n_samples, n_classes, imbalance)
    target = rng.permutation(np.repeat(np.arange(n_classes), sizes))
    mode_dirs = [unit(rng, m, d) for m in n_modes]
    subclass = np.array([rng.randint(n_modes[c]) for c in target])
    mode_vecs = np.stack([mode_dirs[c][j] for c, j in zip(target, subclass, strict=True)])
    images = (
        0.35 * class_dirs[target]
        + 1.0 * mode_vecs
        + noise(n_samples, image_noise)
        + modality_gap * gap_img
    )

    names = [CLASS_NAMES[c] if c < len(CLASS_NAMES) else f"class {c}" for c in range(n_classes)]
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
                f"{names[c]} {j + 1}{VARIANT_LETTERS[r % 26]}{r // 26 or ''}"
                for r in range(n_positive_nouns)
            ]
    nouns.append(modality_gap * gap_img + noise(n_generic_nouns, 0.35) + modality_gap * gap_txt)
    kinds += ["generic"] * n_generic_nouns
    vocab += [f"generic {r + 1}" for r in range(n_generic_nouns)]
    nouns.append(unit(rng, n_random_nouns, d) + modality_gap * gap_txt)
    kinds += ["random"] * n_random_nouns
    vocab += [f"random noun {r + 1}" for r in range(n_random_nouns)]
    noun_target += [-1] * (n_generic_nouns + n_random_nouns)

    return Bunch(
        data=normalize(images).astype(np.float32),
        target=target,
        target_names=names,
        noun_embeddings=normalize(np.vstack(nouns)).astype(np.float32),
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
