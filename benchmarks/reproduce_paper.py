"""Reproduce the paper's CIFAR-10, CIFAR-20 and STL-10 results, or run its protocol on local images.

What it does
------------
For each dataset: embed the training and test images with a CLIP model
(:class:`skgradnorm.CLIPEncoder`, ViT-B-32 with OpenAI's weights by default), embed the
noun bank (the bundled WordNet nouns, :func:`skgradnorm.vocabulary.wordnet_nouns`, with
the paper's seven prompt templates; cached on disk by the encoder), fit
:class:`skgradnorm.GradNormNounSelector` (image centres, GradNorm noun filter) on the
TRAINING split, give every TEST image its retrieved text counterpart ``t``, and cluster
``[u ; t]`` with :class:`skgradnorm.SphericalKMeans` (K clusters, 300 iterations, 20
restarts, seed 0). The image-only baseline clusters ``u`` alone with the same k-means.
ACC (Hungarian matching), NMI and ARI on the test split are printed as a markdown table,
beside the numbers the paper reports (as fractions: 0.911 means 91.1 %; "n/a" where the
paper reports none).

Settings (``../shared/PAPER.md``, CLIP ViT-B/32):

========  ==  ===  ====  =====  =====  ===========  ===========
dataset   K   C    T     top_k  tau    paper ACC    paper NMI
========  ==  ===  ====  =====  =====  ===========  ===========
CIFAR-10  10  250  0.06  5      0.009  91.1         82.6
CIFAR-20  20  200  0.08  5      0.008  60.6         61.3
STL-10    10  30   0.08  5      0.01   98.3         n/a
========  ==  ===  ====  =====  =====  ===========  ===========

CIFAR-20 is CIFAR-100 with its 100 fine labels mapped to the 20 superclasses
(:data:`CIFAR100_FINE_TO_COARSE`).

Commands (from the repository root)
-----------------------------------
The paper datasets, on a machine with network access and a GPU (torchvision downloads
CIFAR-10, CIFAR-100 and STL-10 into ``--data-dir`` on first use, about 3.3 GB in all;
open_clip downloads the OpenAI ViT-B-32 weights; the WordNet noun bank, 117,798 nouns x 7
prompts, is embedded once, a few minutes on a GPU, and cached in ``--cache-dir``)::

    .venv/bin/python benchmarks/reproduce_paper.py \\
        --datasets cifar10,cifar20,stl10 --device cuda --batch-size 256 \\
        --data-dir ~/data/torchvision --out results.json

Local images in the ImageFolder layout, ``DIR/train/<class>/*.png`` and
``DIR/test/<class>/*.png`` (centres on ``train``, clustering and scores on ``test``; the
class folder names are only used for the scores). K defaults to the number of test
classes and the other settings to the selector's defaults; override them with
``--n-clusters``, ``--n-centers``, ``--temperature``, ``--top-k``,
``--retrieval-temperature``, and the noun bank with ``--vocabulary FILE`` (one noun a
line). Offline, point ``--pretrained`` at a local weights file::

    .venv/bin/python benchmarks/reproduce_paper.py --image-folder DIR \\
        --pretrained /path/to/ViT-B-32-openai.pt --n-centers 50 --out results.json

The same overrides apply to the paper datasets (they replace the paper's settings).
Other options: ``--model``, ``--pretrained``, ``--device``, ``--precision``,
``--batch-size``, ``--num-workers``, ``--cache-dir`` (noun-embedding cache),
``--data-dir``, ``--no-download``, ``--verbose``. Run with ``--help`` for all.

What was run here
-----------------
The development machines have no network access (except package registries) and no GPU:
neither the datasets nor the CLIP weights could be downloaded, so the paper datasets were
NOT run, and no reproduced numbers are claimed. Only the local-folder path was run, on
small generated images with a tiny random-weight CLIP model (``tests/test_reproduce_paper.py``),
which checks the pipeline end to end, not the paper's accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

#: The paper's settings for CLIP ViT-B/32 (../shared/PAPER.md, "Settings used ...").
PAPER_SETTINGS = {
    "cifar10": {
        "name": "CIFAR-10",
        "n_clusters": 10,
        "n_centers": 250,
        "temperature": 0.06,
        "top_k": 5,
        "retrieval_temperature": 0.009,
    },
    "cifar20": {
        "name": "CIFAR-20",
        "n_clusters": 20,
        "n_centers": 200,
        "temperature": 0.08,
        "top_k": 5,
        "retrieval_temperature": 0.008,
    },
    "stl10": {
        "name": "STL-10",
        "n_clusters": 10,
        "n_centers": 30,
        "temperature": 0.08,
        "top_k": 5,
        "retrieval_temperature": 0.01,
    },
}

#: The paper's reported test-split scores (training-free GradNorm, ViT-B/32), as
#: fractions; None where the paper reports none.
PAPER_RESULTS = {
    "cifar10": {"acc": 0.911, "nmi": 0.826, "ari": None},
    "cifar20": {"acc": 0.606, "nmi": 0.613, "ari": None},
    "stl10": {"acc": 0.983, "nmi": None, "ari": None},
}

#: The final spherical k-means of the reference implementation.
FINAL_KMEANS = {"n_init": 20, "max_iter": 300, "random_state": 0}

#: CIFAR-100's fine label names, in label order (its meta file's ``fine_label_names``,
#: which is also ``torchvision.datasets.CIFAR100(...).classes``).
CIFAR100_FINE_NAMES = (
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
)

#: CIFAR-100's 20 superclass names, in coarse-label order (the meta file's
#: ``coarse_label_names``).
CIFAR100_COARSE_NAMES = (
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
)

#: Fine label -> coarse label (superclass) of CIFAR-100: entry ``i`` is the superclass of
#: fine class ``i``. This is the dataset's own ``coarse_labels`` (the python version's
#: train/test files store both ``fine_labels`` and ``coarse_labels``; torchvision keeps
#: only the fine ones), written out as the table that clustering papers use for
#: "CIFAR-20" (e.g. SCAN's ``_cifar100_to_cifar20``, and TAC's evaluation). Each of the
#: 20 superclasses has exactly 5 fine classes (checked by :func:`check_cifar20_mapping`).
CIFAR100_FINE_TO_COARSE = (
    4,
    1,
    14,
    8,
    0,
    6,
    7,
    7,
    18,
    3,
    3,
    14,
    9,
    18,
    7,
    11,
    3,
    9,
    7,
    11,
    6,
    11,
    5,
    10,
    7,
    6,
    13,
    15,
    3,
    15,
    0,
    11,
    1,
    10,
    12,
    14,
    16,
    9,
    11,
    5,
    5,
    19,
    8,
    8,
    15,
    13,
    14,
    17,
    18,
    10,
    16,
    4,
    17,
    4,
    2,
    0,
    17,
    4,
    18,
    17,
    10,
    3,
    2,
    12,
    12,
    16,
    12,
    1,
    9,
    19,
    2,
    10,
    0,
    1,
    16,
    12,
    9,
    13,
    15,
    13,
    16,
    19,
    2,
    4,
    6,
    19,
    5,
    5,
    8,
    19,
    18,
    1,
    2,
    15,
    6,
    0,
    17,
    8,
    14,
    13,
)

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
_EMBED_CHUNK = 4096  # images handed to encoder.transform at a time (bounds memory)


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be loaded or downloaded; the message says what to do."""


@dataclass
class Split:
    """Images of one split and their integer labels."""

    images: object  # a sequence of images: uint8 array N x H x W x C, or list of paths
    labels: np.ndarray
    class_names: list = field(default_factory=list)

    def __len__(self):
        return len(self.labels)


# --------------------------------------------------------------------------- CIFAR-20


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


# --------------------------------------------------------------------------- loading


def _torchvision_datasets():
    """``torchvision.datasets``, imported behind skgradnorm's torchvision guard."""
    from skgradnorm._compat import import_open_clip

    import_open_clip()  # installs the CPU-torch / CUDA-torchvision guard if it is needed
    import torchvision.datasets

    return torchvision.datasets


def _load_torchvision(cls_name, name, data_dir, download, **kwargs):
    datasets = _torchvision_datasets()
    cls = getattr(datasets, cls_name)
    try:
        return cls(root=str(data_dir), download=download, **kwargs)
    except (OSError, RuntimeError, ValueError, EOFError) as exc:  # URLError is an OSError
        how = (
            "torchvision downloads it on first use, which needs network access: run where "
            "the download works, or fetch the files elsewhere and copy them into --data-dir "
            "(torchvision's own layout, e.g. <data-dir>/cifar-10-batches-py)"
            if download
            else "--no-download was given: put the files into --data-dir in torchvision's "
            "layout, or drop --no-download to let torchvision download them"
        )
        raise DatasetUnavailableError(
            f"Could not load {name} (torchvision.datasets.{cls_name}, root={data_dir}): "
            f"{type(exc).__name__}: {exc}\n{how}; or cluster local images instead with "
            "--image-folder DIR (DIR/train/<class>/*.png and DIR/test/<class>/*.png)."
        ) from exc


def load_paper_dataset(key, data_dir, download=True):
    """(train, test) splits of ``"cifar10"``, ``"cifar20"`` or ``"stl10"`` via torchvision.

    Images are uint8 arrays N x H x W x 3; nothing is decoded or resized here.
    """
    name = PAPER_SETTINGS[key]["name"]
    splits = []
    for train in (True, False):
        if key == "cifar10":
            ds = _load_torchvision("CIFAR10", name, data_dir, download, train=train)
            splits.append(Split(ds.data, np.asarray(ds.targets, dtype=np.int64), list(ds.classes)))
        elif key == "cifar20":
            ds = _load_torchvision("CIFAR100", name, data_dir, download, train=train)
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
            ds = _load_torchvision("STL10", name, data_dir, download, split=split)
            # STL-10 stores N x 3 x 96 x 96; the encoder wants N x H x W x C (a view).
            images = np.transpose(ds.data, (0, 2, 3, 1))
            splits.append(Split(images, np.asarray(ds.labels, dtype=np.int64), list(ds.classes)))
        else:  # pragma: no cover - argparse restricts the keys
            raise ValueError(f"unknown dataset {key!r}")
    return splits[0], splits[1]


def _folder_split(root: Path, split: str, class_index=None) -> Split:
    folder = root / split
    if not folder.is_dir():
        raise DatasetUnavailableError(
            f"--image-folder {root}: no {split!r} folder. Expected the ImageFolder layout "
            f"{root}/train/<class>/*.png and {root}/test/<class>/*.png."
        )
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetUnavailableError(f"{folder} has no class folders (<class>/*.png).")
    if class_index is None:
        class_index = {c: i for i, c in enumerate(classes)}
    else:  # test classes unseen in train get the next indices
        class_index = dict(class_index)
        for c in classes:
            class_index.setdefault(c, len(class_index))
    paths, labels = [], []
    for c in classes:
        files = sorted(
            p
            for p in (folder / c).iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _IMAGE_SUFFIXES
        )
        paths.extend(str(p) for p in files)
        labels.extend([class_index[c]] * len(files))
    if not paths:
        raise DatasetUnavailableError(
            f"{folder} holds no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) in its class folders."
        )
    names = [None] * len(class_index)
    for c, i in class_index.items():
        names[i] = c
    return Split(paths, np.asarray(labels, dtype=np.int64), names)


def load_image_folder(root):
    """(train, test) splits of an ImageFolder-layout folder (images as file paths)."""
    root = Path(root)
    train = _folder_split(root, "train")
    test = _folder_split(root, "test", {c: i for i, c in enumerate(train.class_names)})
    return train, test


def load_vocabulary(path=None) -> list:
    """The noun bank: one noun a line from ``path`` (blank lines and ``#`` lines skipped,
    duplicates dropped), or the bundled WordNet nouns."""
    if path is None:
        from skgradnorm.vocabulary import wordnet_nouns

        return wordnet_nouns()
    seen, nouns = set(), []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        noun = line.strip()
        if noun and not noun.startswith("#") and noun not in seen:
            seen.add(noun)
            nouns.append(noun)
    if not nouns:
        raise ValueError(f"--vocabulary {path}: the file lists no nouns (one noun a line).")
    return nouns


# --------------------------------------------------------------------------- pipeline


def _log(message):
    print(message, file=sys.stderr, flush=True)


def embed_images(encoder, images, chunk_size=_EMBED_CHUNK) -> np.ndarray:
    """Embed a sequence of images in chunks (only one chunk of PIL images lives at a time)."""
    n = len(images)
    parts = []
    for start in range(0, n, chunk_size):
        chunk = images[start : start + chunk_size]
        parts.append(np.asarray(encoder.transform(chunk), dtype=np.float32))
    return np.concatenate(parts, axis=0)


def score(y_true, y_pred) -> dict:
    """ACC, NMI and ARI (fractions in [0, 1] for ACC and NMI; ARI may be negative)."""
    from skgradnorm.metrics import clustering_metrics

    m = clustering_metrics(y_true, y_pred)
    return {"acc": m["ACC"], "nmi": m["NMI"], "ari": m["ARI"]}


def cluster_dataset(U_train, U_test, y_test, E, nouns, settings, device=None) -> list:
    """Fit the selector on the training split, cluster the test split; two result rows.

    ``settings`` holds ``n_clusters``, ``n_centers``, ``temperature``, ``top_k`` and
    ``retrieval_temperature``. Returns ``[gradnorm_row, image_only_row]``, dicts with the
    scores, the predicted labels and timings.
    """
    from skgradnorm import GradNormNounSelector, SphericalKMeans

    t0 = time.perf_counter()
    selector = GradNormNounSelector(
        noun_embeddings=E,
        vocabulary=nouns,
        n_centers=settings["n_centers"],
        temperature=settings["temperature"],
        top_k=settings["top_k"],
        retrieval_temperature=settings["retrieval_temperature"],
        concatenate=True,
        random_state=0,
        device=device,
    ).fit(U_train)
    Z = selector.transform(U_test)  # [u ; t], 2d columns
    t_select = time.perf_counter() - t0

    rows = []
    for method, X in (("GradNorm", Z), ("image-only k-means", U_test)):
        t0 = time.perf_counter()
        km = SphericalKMeans(settings["n_clusters"], device=device, **FINAL_KMEANS).fit(X)
        row = {"method": method, **score(y_test, km.labels_)}
        row["seconds"] = time.perf_counter() - t0 + (t_select if method == "GradNorm" else 0.0)
        row["y_pred"] = km.labels_.astype(int).tolist()
        if method == "GradNorm":
            row["n_centers"] = int(selector.n_centers_)
            row["n_selected_nouns"] = len(selector.selected_nouns_)
            row["selected_nouns"] = list(selector.selected_nouns_)
        rows.append(row)
    return rows


def _fmt(value):
    return "n/a" if value is None else f"{value:.3f}"


def format_table(results) -> str:
    """Markdown table of the result rows (scores as fractions; paper numbers beside)."""
    lines = [
        "| dataset | method | ACC | NMI | ARI | paper ACC | paper NMI | paper ARI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        paper = r.get("paper") or {}
        lines.append(
            f"| {r['dataset']} | {r['method']} | {_fmt(r['acc'])} | {_fmt(r['nmi'])} | "
            f"{_fmt(r['ari'])} | {_fmt(paper.get('acc'))} | {_fmt(paper.get('nmi'))} | "
            f"{_fmt(paper.get('ari'))} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def _default_data_dir() -> Path:
    env = os.environ.get("SKGRADNORM_DATA")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "skgradnorm" / "datasets"


def _parse_datasets(text):
    keys = [k.strip().lower().replace("-", "") for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in PAPER_SETTINGS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown dataset(s) {unknown or text!r}; choose from {','.join(PAPER_SETTINGS)}"
        )
    return list(dict.fromkeys(keys))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reproduce_paper.py",
        description="GradNorm (training-free) on CIFAR-10 / CIFAR-20 / STL-10, or on a local "
        "image folder: centres on the train split, clustering scored on the test split.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--datasets",
        type=_parse_datasets,
        default=",".join(PAPER_SETTINGS),
        metavar="LIST",
        help="paper datasets to run, comma separated",
    )
    data.add_argument(
        "--image-folder",
        type=Path,
        default=None,
        metavar="DIR",
        help="run on DIR/train/<class>/* and DIR/test/<class>/* instead of --datasets",
    )
    data.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="torchvision dataset root; None: $SKGRADNORM_DATA, else ~/.cache/skgradnorm/datasets",
    )
    data.add_argument(
        "--no-download",
        action="store_true",
        help="do not let torchvision download missing datasets",
    )
    data.add_argument(
        "--vocabulary",
        type=Path,
        default=None,
        metavar="FILE",
        help="noun bank file, one noun a line; None: the bundled WordNet nouns",
    )
    model = p.add_argument_group("model")
    model.add_argument("--model", default="ViT-B-32", help="open_clip architecture")
    model.add_argument(
        "--pretrained",
        default="openai",
        help="open_clip pretrained tag, or a local weights file / folder",
    )
    model.add_argument("--device", default=None, help="cuda, cpu, mps; None: the best available")
    model.add_argument(
        "--precision",
        choices=["fp32", "fp16", "bf16"],
        default=None,
        help="model precision; None: fp16 on CUDA, else fp32",
    )
    model.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    model.add_argument("--num-workers", type=int, default=0, help="image preprocessing workers")
    model.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="noun-embedding cache folder; None: $SKGRADNORM_CACHE, else ~/.cache/skgradnorm",
    )
    method = p.add_argument_group(
        "method",
        "Override the paper's settings (None: the paper's). With --image-folder, None "
        "means: K = the number of test classes, C = round(sqrt(n_train)), T = 0.05, "
        "top_k = 5, tau = 0.008 (GradNormNounSelector's defaults).",
    )
    method.add_argument("--n-clusters", type=int, default=None, help="K")
    method.add_argument("--n-centers", type=int, default=None, help="C, image centres")
    method.add_argument("--temperature", type=float, default=None, help="T, filter temperature")
    method.add_argument("--top-k", type=int, default=None, help="nouns kept per centre")
    method.add_argument("--retrieval-temperature", type=float, default=None, help="tau")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the results (scores, settings, labels) as JSON here",
    )
    p.add_argument("--verbose", action="store_true", help="progress bars while embedding")
    return p


def _settings_for(key, args, n_test_classes=None):
    if key is None:  # image folder: the selector's defaults unless overridden
        base = {
            "name": f"folder:{args.image_folder.name}",
            "n_clusters": n_test_classes,
            "n_centers": "auto",
            "temperature": 0.05,
            "top_k": 5,
            "retrieval_temperature": 0.008,
        }
    else:
        base = dict(PAPER_SETTINGS[key])
    overridden = []
    for name in ("n_clusters", "n_centers", "temperature", "top_k", "retrieval_temperature"):
        value = getattr(args, name)
        if value is not None:
            if key is not None and value != base[name]:
                overridden.append(name)
            base[name] = value
    base["overridden"] = overridden
    return base


def run(args) -> dict:
    """Load the data, embed, cluster; return the JSON-ready report (raises on errors)."""
    try:
        from skgradnorm import CLIPEncoder
    except ImportError:  # not yet exported at the top level
        from skgradnorm._encoder import CLIPEncoder

    # Load every dataset first, so a missing download fails before the model is loaded.
    jobs = []  # (key or None, train, test)
    if args.image_folder is not None:
        train, test = load_image_folder(args.image_folder)
        jobs.append((None, train, test))
    else:
        data_dir = args.data_dir or _default_data_dir()
        for key in args.datasets:
            _log(f"[{key}] loading from {data_dir} (download={not args.no_download})")
            train, test = load_paper_dataset(key, data_dir, download=not args.no_download)
            jobs.append((key, train, test))
    nouns = load_vocabulary(args.vocabulary)

    encoder = CLIPEncoder(
        model_name=args.model,
        pretrained=args.pretrained,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        verbose=args.verbose,
    )
    t0 = time.perf_counter()
    _log(f"embedding {len(nouns)} nouns (7 prompts each; cached after the first run)")
    E = encoder.encode_nouns(nouns)
    noun_seconds = time.perf_counter() - t0

    results, datasets = [], []
    for key, train, test in jobs:
        settings = _settings_for(key, args, n_test_classes=len(np.unique(test.labels)))
        name = settings["name"]
        t0 = time.perf_counter()
        _log(f"[{name}] embedding {len(train)} train and {len(test)} test images")
        U_train = embed_images(encoder, train.images)
        U_test = embed_images(encoder, test.images)
        embed_seconds = time.perf_counter() - t0
        rows = cluster_dataset(U_train, U_test, test.labels, E, nouns, settings, device=args.device)
        paper = PAPER_RESULTS.get(key) if key is not None and not settings["overridden"] else None
        for row in rows:
            row["dataset"] = name
            row["paper"] = paper if row["method"] == "GradNorm" else None
            results.append(row)
        gn = rows[0]
        _log(
            f"[{name}] GradNorm ACC {gn['acc']:.3f} (image-only {rows[1]['acc']:.3f}); "
            f"{gn['n_selected_nouns']} nouns kept, e.g. {', '.join(gn['selected_nouns'][:8])}"
        )
        datasets.append(
            {
                "dataset": name,
                "key": key,
                "n_train": len(train),
                "n_test": len(test),
                "class_names": list(test.class_names),
                "settings": {k: v for k, v in settings.items() if k != "name"},
                "final_kmeans": dict(FINAL_KMEANS),
                "embed_seconds": embed_seconds,
                "y_true": test.labels.astype(int).tolist(),
            }
        )
    import skgradnorm
    from skgradnorm._torch_utils import resolve_device

    return {
        "model": args.model,
        "pretrained": str(args.pretrained),
        "device": str(resolve_device(args.device)),
        "precision": args.precision,
        "n_nouns": len(nouns),
        "vocabulary": str(args.vocabulary) if args.vocabulary else "wordnet_nouns()",
        "noun_seconds": noun_seconds,
        "skgradnorm_version": skgradnorm.__version__,
        "datasets": datasets,
        "results": results,
        "note": "scores are fractions (0.911 = 91.1 %); 'paper' holds the paper's reported "
        "numbers (GradNorm rows, paper settings only), null where it reports none.",
    }


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 data/weights problem)."""
    args = build_parser().parse_args(argv)
    from skgradnorm.exceptions import PretrainedWeightsError, UnreadableImageError

    try:
        report = run(args)
    except (DatasetUnavailableError, PretrainedWeightsError, UnreadableImageError) as exc:
        _log(f"error: {exc}")
        return 2
    print(format_table(report["results"]))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        _log(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
