"""The paper's datasets: torchvision's loaders and ImageFolder layouts, as (train, test).

Every loader returns two :class:`Split` objects, the authors' training split (where the
image centres are fitted) and their test split (what is clustered and scored), with
images as a uint8 array N x H x W x 3 or a list of file paths. Nothing is decoded here.

Where each dataset is looked for, under ``data_root`` (``--data-root``):

========================  ===============================================================
dataset                   source (train split / test split)
========================  ===============================================================
CIFAR-10, CIFAR-20        torchvision ``CIFAR10`` / ``CIFAR100`` (train / test); CIFAR-20
                          maps the 100 fine labels to the 20 superclasses
STL-10                    torchvision ``STL10`` (train / test)
DTD                       torchvision ``DTD``, partition 1 (train + val / test)
Oxford-IIIT Pets          torchvision ``OxfordIIITPet`` (trainval / test)
Flowers-102               torchvision ``Flowers102`` (train + val / test)
Food-101                  torchvision ``Food101`` (train / test)
FGVC-Aircraft             torchvision ``FGVCAircraft``, 100 variants (trainval / test)
ImageNet-1K               ``imagenet/{train,val}/<wnid>/*.JPEG``
ImageNet-10, -Dogs        ``imagenet-10/`` or ``imagenet-dogs/`` in the same layout, or
                          else the listed WordNet ids read from ``imagenet/``
UCF101                    ``ucf101/{train,val}/<class>/**/*.jpg`` (frames you extracted)
Stanford Cars             ``cars/{train,test}/<class>/*.jpg``
========================  ===============================================================

The torchvision datasets are downloaded into ``data_root`` by torchvision when missing
(the runner says so first; ``download=False`` forbids it). The folder datasets cannot be
downloaded: a missing or malformed folder is a one-line :class:`DatasetUnavailableError`
naming the layout expected. In a folder layout, the test split may be called ``val`` or
``test``, classes are the sorted sub-folder names (as torchvision's ``ImageFolder``) and
images are found at any depth below them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cifar import CIFAR100_COARSE_NAMES, CIFAR100_FINE_NAMES, cifar100_to_cifar20
from .settings import DATASET_NAMES

#: ImageNet-10's WordNet ids (the list that Contrastive Clustering, TAC and GradNorm use).
IMAGENET10_WNIDS = (
    "n02056570", "n02085936", "n02128757", "n02690373", "n02692877",
    "n03095699", "n04254680", "n04285008", "n04467665", "n07747607",
)  # fmt: skip
#: ImageNet-Dogs' 15 WordNet ids (same source).
IMAGENET_DOGS_WNIDS = (
    "n02085936", "n02086646", "n02088238", "n02091467", "n02097130",
    "n02099601", "n02101388", "n02101556", "n02102177", "n02105056",
    "n02105412", "n02105855", "n02107142", "n02110958", "n02112137",
)  # fmt: skip

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}

#: torchvision datasets read as file lists: class name, keyword sets of the train
#: split's parts, of the test split, and the attribute holding the file paths.
_TORCHVISION_FILES = {
    "dtd": ("DTD", ({"split": "train"}, {"split": "val"}), ({"split": "test"},), "_image_files"),
    "pets": ("OxfordIIITPet", ({"split": "trainval"},), ({"split": "test"},), "_images"),
    "flowers": (
        "Flowers102",
        ({"split": "train"}, {"split": "val"}),
        ({"split": "test"},),
        "_image_files",
    ),
    "food": ("Food101", ({"split": "train"},), ({"split": "test"},), "_image_files"),
    "aircraft": (
        "FGVCAircraft",
        ({"split": "trainval", "annotation_level": "variant"},),
        ({"split": "test", "annotation_level": "variant"},),
        "_image_files",
    ),
}
#: Folder datasets: sub-folder of the data root, and the WordNet ids to read (None: all).
_FOLDERS = {
    "imagenet": ("imagenet", None),
    "imagenet10": ("imagenet-10", IMAGENET10_WNIDS),
    "imagenet-dogs": ("imagenet-dogs", IMAGENET_DOGS_WNIDS),
    "ucf101": ("ucf101", None),
    "cars": ("cars", None),
}
TORCHVISION_DATASETS = ("cifar10", "cifar20", "stl10", *_TORCHVISION_FILES)
FOLDER_DATASETS = tuple(_FOLDERS)


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be loaded; the message says what was expected and where."""


@dataclass
class Split:
    """Images of one split and their integer labels."""

    images: object  # uint8 array N x H x W x C, or a list of image paths
    labels: np.ndarray
    class_names: list = field(default_factory=list)

    def __len__(self):
        return len(self.labels)


# --------------------------------------------------------------------------- torchvision


def torchvision_datasets():
    """``torchvision.datasets``, imported behind skgradnorm's torchvision guard."""
    from skgradnorm._utils._compat import import_open_clip

    import_open_clip()  # installs the CPU-torch / CUDA-torchvision guard if it is needed
    import torchvision.datasets

    return torchvision.datasets


def _torchvision(cls_name, key, data_root, download, **kwargs):
    cls = getattr(torchvision_datasets(), cls_name)
    try:
        return cls(root=str(data_root), download=download, **kwargs)
    except (OSError, RuntimeError, ValueError, EOFError) as exc:  # URLError is an OSError
        how = (
            "torchvision downloads it on first use, which needs network access: run where "
            "the download works, or copy the files into --data-root in torchvision's layout"
            if download
            else "--no-download was given: put the files into --data-root in torchvision's "
            "layout, or drop --no-download to let torchvision download them"
        )
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise DatasetUnavailableError(
            f"Could not load {DATASET_NAMES[key]} (torchvision.datasets.{cls_name}, "
            f"root={data_root}): {reason}. {how}; or cluster local images with "
            "--image-folder DIR (DIR/train/<class>/* and DIR/test/<class>/*)."
        ) from exc


def _files_split(key, data_root, download, parts, attribute) -> Split:
    cls_name = _TORCHVISION_FILES[key][0]
    paths, labels, classes = [], [], None
    for kwargs in parts:
        ds = _torchvision(cls_name, key, data_root, download, **kwargs)
        files = getattr(ds, attribute, None)
        if files is None or not hasattr(ds, "_labels"):
            raise DatasetUnavailableError(
                f"torchvision.datasets.{cls_name} has no {attribute}/_labels attributes in "
                "this torchvision version; use --image-folder with an ImageFolder copy instead."
            )
        paths.extend(str(p) for p in files)
        labels.extend(int(y) for y in ds._labels)
        classes = classes or list(getattr(ds, "classes", []) or [])
    if not classes:
        classes = [str(i) for i in range(max(labels) + 1)] if labels else []
    return Split(paths, np.asarray(labels, dtype=np.int64), classes)


def load_torchvision_dataset(key, data_root, download=True):
    """(train, test) of a torchvision dataset (see the module docstring for the splits)."""
    if key in _TORCHVISION_FILES:
        _, train_parts, test_parts, attribute = _TORCHVISION_FILES[key]
        return tuple(
            _files_split(key, data_root, download, parts, attribute)
            for parts in (train_parts, test_parts)
        )
    splits = []
    for train in (True, False):
        if key == "cifar10":
            ds = _torchvision("CIFAR10", key, data_root, download, train=train)
            splits.append(Split(ds.data, np.asarray(ds.targets, dtype=np.int64), list(ds.classes)))
        elif key == "cifar20":
            ds = _torchvision("CIFAR100", key, data_root, download, train=train)
            classes = list(getattr(ds, "classes", CIFAR100_FINE_NAMES))
            if tuple(classes) != CIFAR100_FINE_NAMES:
                raise DatasetUnavailableError(
                    "CIFAR-100's fine class names are not in the expected order, so the "
                    f"fine-to-coarse table cannot be applied safely; got {classes[:5]}..."
                )
            coarse = cifar100_to_cifar20(ds.targets)
            splits.append(Split(ds.data, coarse, list(CIFAR100_COARSE_NAMES)))
        elif key == "stl10":
            split = "train" if train else "test"
            ds = _torchvision("STL10", key, data_root, download, split=split)
            # STL-10 stores N x 3 x 96 x 96; the encoder wants N x H x W x C (a view).
            images = np.transpose(ds.data, (0, 2, 3, 1))
            splits.append(Split(images, np.asarray(ds.labels, dtype=np.int64), list(ds.classes)))
        else:
            raise ValueError(
                f"{key!r} is not a torchvision dataset; expected {TORCHVISION_DATASETS}"
            )
    return splits[0], splits[1]


# --------------------------------------------------------------------------- folders


def _images_below(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def read_class_folder(folder, class_index=None, classes=None, what="") -> Split:
    """One split in the ImageFolder layout ``folder/<class>/**/<image>``.

    ``classes``: the class folders to read (all when None; each must exist). ``class_index``:
    class name -> label to reuse (the training split's); new classes get the next labels.
    """
    folder = Path(folder)
    what = what or str(folder)
    if not folder.is_dir():
        raise DatasetUnavailableError(f"{what}: {folder} is not a folder.")
    present = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = present
        if not classes:
            flat = any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())
            hint = " (it holds images directly: sort them into class folders)" if flat else ""
            raise DatasetUnavailableError(
                f"{what}: {folder} has no class folders{hint}; expected {folder}/<class>/*.jpg."
            )
    else:
        missing = [c for c in classes if c not in set(present)]
        if missing:
            raise DatasetUnavailableError(
                f"{what}: {folder} lacks {len(missing)} of the {len(classes)} class folders "
                f"expected, e.g. {', '.join(missing[:3])}; expected {folder}/<class>/*.jpg."
            )
    index = dict(class_index or {})
    for c in classes:
        index.setdefault(c, len(index))
    paths, labels = [], []
    for c in classes:
        files = _images_below(folder / c)
        paths.extend(str(p) for p in files)
        labels.extend([index[c]] * len(files))
    if not paths:
        raise DatasetUnavailableError(
            f"{what}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) below the class folders "
            f"of {folder}."
        )
    names = [None] * len(index)
    for c, i in index.items():
        names[i] = c
    return Split(paths, np.asarray(labels, dtype=np.int64), names)


def _split_folder(root: Path, names, what) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DatasetUnavailableError(
        f"{what}: {root} has no {' or '.join(repr(n) for n in names)} folder; expected "
        f"{root}/train/<class>/* and {root}/{names[0]}/<class>/*."
    )


def load_split_folders(root, classes=None, what="", test_names=("val", "test")):
    """(train, test) from ``root/train`` and ``root/val`` (or ``root/test``)."""
    root = Path(root)
    what = what or str(root)
    if not root.is_dir():
        raise DatasetUnavailableError(
            f"{what}: {root} not found; expected {root}/train/<class>/* and "
            f"{root}/{test_names[0]}/<class>/*."
        )
    train_dir = _split_folder(root, ("train",), what)
    test_dir = _split_folder(root, test_names, what)
    train = read_class_folder(train_dir, classes=classes, what=what)
    test = read_class_folder(
        test_dir, {c: i for i, c in enumerate(train.class_names)}, classes, what
    )
    return train, test


def load_folder_dataset(key, data_root):
    """(train, test) of a folder dataset under ``data_root`` (see the module docstring)."""
    sub, wnids = _FOLDERS[key]
    data_root = Path(data_root)
    name = DATASET_NAMES[key]
    root = data_root / sub
    if wnids is not None and not root.is_dir() and (data_root / "imagenet").is_dir():
        root = data_root / "imagenet"  # the subset's WordNet ids, read from ImageNet-1K
    test_names = ("test", "val") if key == "cars" else ("val", "test")
    return load_split_folders(root, classes=wnids, what=name, test_names=test_names)


def load_dataset(key, data_root, download=True):
    """(train, test) splits of one of the paper's datasets."""
    if key in _FOLDERS:
        return load_folder_dataset(key, data_root)
    return load_torchvision_dataset(key, data_root, download=download)


def load_image_folder(root):
    """(train, test) of a local ``root/train/<class>/*`` and ``root/test/<class>/*``."""
    return load_split_folders(root, what=f"--image-folder {root}", test_names=("test", "val"))
