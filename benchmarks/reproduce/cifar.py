"""CIFAR-100's superclasses: the "CIFAR-20" labels of the clustering literature."""

from __future__ import annotations

import numpy as np

# fmt: off
#: CIFAR-100's fine label names, in label order (its meta file's ``fine_label_names``,
#: which is also ``torchvision.datasets.CIFAR100(...).classes``).
CIFAR100_FINE_NAMES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed",
    "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud",
    "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl",
    "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower",
    "leopard", "lion", "lizard", "lobster", "man", "maple_tree",
    "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit",
    "raccoon", "ray", "road", "rocket", "rose", "sea",
    "seal", "shark", "shrew", "skunk", "skyscraper", "snail",
    "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper",
    "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)

#: CIFAR-100's 20 superclass names, in coarse-label order (the meta file's
#: ``coarse_label_names``).
CIFAR100_COARSE_NAMES = (
    "aquatic_mammals", "fish", "flowers",
    "food_containers", "fruit_and_vegetables", "household_electrical_devices",
    "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
)

#: Fine label -> coarse label (superclass) of CIFAR-100: entry ``i`` is the superclass of
#: fine class ``i``. This is the dataset's own ``coarse_labels`` (the python version's
#: train/test files store both ``fine_labels`` and ``coarse_labels``; torchvision keeps
#: only the fine ones), written out as the table that clustering papers use for
#: "CIFAR-20" (e.g. SCAN's and TAC's). Each of the 20 superclasses has exactly 5 fine
#: classes (checked by :func:`check_cifar20_mapping`).
CIFAR100_FINE_TO_COARSE = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)
# fmt: on


def check_cifar20_mapping(mapping=CIFAR100_FINE_TO_COARSE) -> np.ndarray:
    """Check a fine-to-coarse table: 100 entries, 20 superclasses of 5 fine classes each.

    Returns the table as an int array; raises ValueError if it is malformed.
    """
    table = np.asarray(mapping)
    if table.shape != (100,) or table.dtype.kind not in "iu":
        raise ValueError(f"the CIFAR-100 mapping must be 100 integers; got shape {table.shape}.")
    counts = np.bincount(table, minlength=20) if table.min() >= 0 else None
    if counts is None or counts.shape != (20,) or not np.all(counts == 5):
        raise ValueError(
            "the CIFAR-100 mapping must put exactly 5 fine classes into each of the 20 "
            f"superclasses 0..19; got counts {None if counts is None else counts.tolist()}."
        )
    return table


def cifar100_to_cifar20(fine_labels) -> np.ndarray:
    """Map CIFAR-100 fine labels (0..99) to the 20 superclass labels (0..19)."""
    return check_cifar20_mapping()[np.asarray(fine_labels, dtype=np.int64)]
