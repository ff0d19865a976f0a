"""Calibrated worlds: overlapping sub-classes, classes connected in the neighbour graph."""

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

_TEXT_MODE_STRENGTH = 0.5
#: Weight of the variation direction in a style noun of :func:`make_calibrated_world`.
_STYLE_STRENGTH = 0.6
#: Weight, relative to ``modality_gap``, of the images' offset in a generic noun of
#: :func:`make_calibrated_world`.
_GENERIC_STRENGTH = 0.8


@validate_params(
    {
        "n_samples": count(2),
        "n_classes": count(1),
        "n_features": count(2),
        "max_modes": count(1),
        "superclass_size": count(1),
        "class_similarity": [Interval(numbers.Real, 0, 1, closed="left")],
        "class_separation": WEIGHT,
        "mode_spread": WEIGHT,
        "image_noise": WEIGHT,
        "noise_decay": WEIGHT,
        "noise_heterogeneity": [Interval(numbers.Real, 0, 1, closed="left")],
        "entanglement": [Interval(numbers.Real, 0, 1, closed="both")],
        "alignment": [Interval(numbers.Real, 0, 1, closed="both")],
        "imbalance": [Interval(numbers.Real, 1, None, closed="left")],
        "n_positive_nouns": count(1),
        "n_style_directions": count(0),
        "n_style_nouns": count(0),
        "n_blend_nouns": count(0),
        "n_generic_nouns": count(0),
        "n_random_nouns": count(0),
        "text_noise": WEIGHT,
        "modality_gap": WEIGHT,
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
    n_classes = check_count(n_classes, "n_classes", 1)
    n_samples = check_count(n_samples, "n_samples", 2 * n_classes)
    n_features = check_count(n_features, "n_features", 2)
    max_modes = check_count(max_modes, "max_modes", 1)
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
        spectral = normalize(rng.standard_normal((n, d)) * np.sqrt(variances))
        return normalize(
            np.sqrt(entanglement) * spectral + np.sqrt(1 - entanglement) * unit(rng, n, d)
        )

    # Semantic directions (shared by both modalities), then the images' own.
    superclass = rng.permutation(np.arange(n_classes) // superclass_size)
    super_dirs = directions(int(superclass.max()) + 1)
    rho = float(class_similarity)
    sem = normalize(
        np.sqrt(rho) * super_dirs[superclass] + np.sqrt(1 - rho) * directions(n_classes)
    )
    n_modes = rng.randint(1, max_modes + 1, size=n_classes)
    sem_modes = [directions(m) for m in n_modes]
    a, b = np.sqrt(alignment), np.sqrt(1 - alignment)
    image_class = normalize(a * sem + b * directions(n_classes))
    image_modes = [normalize(a * m + b * directions(len(m))) for m in sem_modes]

    class_scale = rng.permutation(
        np.linspace(1 - noise_heterogeneity, 1 + noise_heterogeneity, n_classes)
    )
    gap_img, gap_txt = unit(rng, 2, d)

    target = rng.permutation(
        np.repeat(np.arange(n_classes), class_sizes(n_samples, n_classes, imbalance))
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
    images = modality_gap * gap_img + content_norm * normalize(content)

    names = [CLASS_NAMES[c] if c < len(CLASS_NAMES) else f"class {c}" for c in range(n_classes)]
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
                VARIANT_LETTERS[r % 26] + ("" if r < 26 else str(r // 26))
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
        style_name = STYLE_NAMES[s] if s < len(STYLE_NAMES) else f"style {s}"
        add(vecs, "style", -1, [f"{style_name} look {r + 1}" for r in range(n_style_nouns)])
    if n_classes > 1:
        for c in range(n_classes):
            siblings = np.flatnonzero((superclass == superclass[c]) & (np.arange(n_classes) != c))
            if siblings.size == 0:
                siblings = np.delete(np.arange(n_classes), c)
            other = siblings[rng.randint(siblings.size, size=n_blend_nouns)]
            vecs = (
                modality_gap * gap_txt
                + normalize(sem[c] + sem[other])
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
            GENERIC_NAMES[r % len(GENERIC_NAMES)]
            + ("" if r < len(GENERIC_NAMES) else f" {r // len(GENERIC_NAMES) + 1}")
            for r in range(n_generic_nouns)
        ],
    )
    vecs = unit(rng, n_random_nouns, d) + modality_gap * gap_txt
    add(vecs, "random", -1, [f"random noun {r + 1}" for r in range(n_random_nouns)])

    return Bunch(
        data=normalize(images).astype(np.float32),
        target=target,
        target_names=names,
        noun_embeddings=normalize(np.vstack(nouns)).astype(np.float32),
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
