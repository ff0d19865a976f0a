"""The authors' settings as one table, their backbones and their k-means protocol.

Read from the authors' scripts (``filter_nouns.py``: C, T, top_k per dataset and
backbone; ``concat_kmeans.py``: K and tau) and from the paper's tables (arXiv:2510.16335)
for the reported scores. Numbers are restated, not copied code. ``None`` means the
source gives no value: the reported score is unknown, or (Cars' C) the setting is missing
and must be passed on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One row: a dataset with a backbone, its settings and the reported test scores."""

    dataset: str
    backbone: str
    n_clusters: int  # K, the number of classes
    n_centers: int | None  # C, image centres fitted on the training split
    temperature: float  # T, the GradNorm filter's softmax temperature
    top_k: int  # nouns kept per centre
    retrieval_temperature: float  # tau, the retrieval softmax temperature
    acc: float | None  # reported scores (fractions: 0.911 is 91.1 %)
    nmi: float | None
    ari: float | None

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.backbone}"

    @property
    def method_settings(self) -> dict:
        return {
            "n_clusters": self.n_clusters,
            "n_centers": self.n_centers,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "retrieval_temperature": self.retrieval_temperature,
        }

    @property
    def reported(self) -> dict:
        return {"acc": self.acc, "nmi": self.nmi, "ari": self.ari}


_ = None
# fmt: off
#: THE table. ViT-B/32 rows: filter_nouns.py's main lists (C, T, top_k) and
#: concat_kmeans.py's (tau); ACC and NMI as the paper reports them. The other backbones:
#: the two scripts' commented ViT-B/16, ViT-L/14 and RN50 lists (filter_nouns.py gives one
#: C and T list for ViT-B/16 and ViT-L/14, another T list for RN50). Cars: the scripts
#: leave C blank. UCF101's T and top_k, 0.02 and 5, come from the later filter_nouns.py.
_TABLE = (
    # dataset        backbone   K     C     T      top_k  tau    ACC    NMI    ARI
    ("cifar10",       "vit-b-32", 10,   250,  0.06,  5, 0.009, 0.911, 0.826, _),
    ("cifar20",       "vit-b-32", 20,   200,  0.08,  5, 0.008, 0.606, 0.613, _),
    ("stl10",         "vit-b-32", 10,   30,   0.08,  5, 0.01,  0.983, _,     _),
    ("imagenet10",    "vit-b-32", 10,   50,   0.018, 5, 0.006, 0.994, 0.987, _),
    ("imagenet-dogs", "vit-b-32", 15,   50,   0.02,  5, 0.007, 0.812, 0.810, _),
    ("dtd",           "vit-b-32", 47,   180,  0.08,  5, 0.01,  0.509, 0.631, _),
    ("ucf101",        "vit-b-32", 101,  303,  0.02,  5, 0.01,  _,     0.825, _),
    ("imagenet",      "vit-b-32", 1000, 2000, 0.02,  3, 0.006, 0.499, 0.792, _),
    ("cars",          "vit-b-32", 196,  _,    0.01,  5, 0.01,  _,     _,     _),
    ("pets",          "vit-b-32", 37,   120,  0.01,  5, 0.01,  _,     _,     _),
    ("flowers",       "vit-b-32", 102,  300,  0.01,  5, 0.009, _,     _,     _),
    ("food",          "vit-b-32", 101,  1200, 0.01,  5, 0.01,  _,     _,     _),
    ("aircraft",      "vit-b-32", 100,  300,  0.02,  5, 0.008, _,     _,     _),
    ("cifar10",       "vit-b-16", 10,   250,  0.06,  5, 0.01,  _,     _,     _),
    ("cifar20",       "vit-b-16", 20,   200,  0.08,  5, 0.01,  _,     _,     _),
    ("stl10",         "vit-b-16", 10,   30,   0.08,  5, 0.01,  _,     _,     _),
    ("imagenet-dogs", "vit-b-16", 15,   50,   0.02,  5, 0.009, _,     _,     _),
    ("dtd",           "vit-b-16", 47,   180,  0.08,  5, 0.01,  _,     _,     _),
    ("cifar10",       "vit-l-14", 10,   250,  0.06,  5, 0.01,  _,     _,     _),
    ("cifar20",       "vit-l-14", 20,   200,  0.08,  5, 0.012, _,     _,     _),
    ("stl10",         "vit-l-14", 10,   30,   0.08,  5, 0.03,  _,     _,     _),
    ("imagenet-dogs", "vit-l-14", 15,   50,   0.02,  5, 0.009, _,     _,     _),
    ("dtd",           "vit-l-14", 47,   180,  0.08,  5, 0.01,  _,     _,     _),
    ("cifar10",       "rn50",     10,   250,  0.1,   5, 0.007, _,     _,     _),
    ("cifar20",       "rn50",     20,   200,  0.08,  5, 0.009, _,     _,     _),
    ("stl10",         "rn50",     10,   30,   0.08,  5, 0.03,  _,     _,     _),
    ("imagenet-dogs", "rn50",     15,   50,   0.02,  5, 0.009, _,     _,     _),
    ("dtd",           "rn50",     47,   180,  0.1,   5, 0.01,  _,     _,     _),
)
# fmt: on
SETTINGS: tuple[Setting, ...] = tuple(Setting(*row) for row in _TABLE)
del _

#: Backbone key -> (the authors' name, open_clip model, open_clip pretrained tag). The
#: paper used OpenAI's CLIP weights; open_clip's "openai" tag loads the same weights.
BACKBONES = {
    "vit-b-32": ("ViT-B/32", "ViT-B-32", "openai"),
    "vit-b-16": ("ViT-B/16", "ViT-B-16", "openai"),
    "vit-l-14": ("ViT-L/14", "ViT-L-14", "openai"),
    "rn50": ("RN50", "RN50", "openai"),
}

#: Dataset key -> display name, in the order of the paper's tables.
DATASET_NAMES = {
    "cifar10": "CIFAR-10",
    "cifar20": "CIFAR-20",
    "stl10": "STL-10",
    "imagenet10": "ImageNet-10",
    "imagenet-dogs": "ImageNet-Dogs",
    "dtd": "DTD",
    "ucf101": "UCF101",
    "imagenet": "ImageNet-1K",
    "cars": "Stanford Cars",
    "pets": "Oxford-IIIT Pets",
    "flowers": "Flowers-102",
    "food": "Food-101",
    "aircraft": "FGVC-Aircraft",
}

#: k-means protocols. "paper": the authors' faiss spherical k-means, 300 iterations, 20
#: restarts, seed 0, for both the image centres and the final clustering; faiss trains on
#: at most 256 points per centroid (its default ``max_points_per_centroid``) and runs all
#: its iterations, so the package's k-means gets ``max_samples = 256 * k`` and ``tol=0``.
#: "package": the selector's defaults for the centres (3 restarts, 100 iterations) and
#: 10 restarts for the final clustering, on every row; faster, not the authors' protocol.
PROTOCOLS = {
    "paper": {
        "centres": {"n_init": 20, "max_iter": 300},
        "final": {"n_init": 20, "max_iter": 300, "tol": 0.0},
        "points_per_centroid": 256,
    },
    "package": {
        "centres": {"n_init": 3, "max_iter": 100},
        "final": {"n_init": 10, "max_iter": 300},
        "points_per_centroid": None,
    },
}
SEED = 0


def backbone_key(text: str) -> str:
    """Normalise a backbone name ("ViT-B/32", "ViT-B-32", "vit_b_32") to a table key."""
    key = text.strip().lower().replace("/", "-").replace("_", "-")
    if key not in BACKBONES:
        raise ValueError(
            f"unknown backbone {text!r}; expected one of {', '.join(BACKBONES)} "
            "(or the authors' names ViT-B/32, ViT-B/16, ViT-L/14, RN50)"
        )
    return key


def dataset_key(text: str) -> str:
    """Normalise a dataset name ("CIFAR-10", "ImageNet-Dogs", "imagenet_dogs") to a key."""
    key = text.strip().lower().replace("_", "-")
    aliases = {k.replace("-", ""): k for k in DATASET_NAMES}
    aliases.update(
        {v.lower().replace("-", "").replace(" ", ""): k for k, v in DATASET_NAMES.items()}
    )
    aliases.update({"imagenet1k": "imagenet", "stanfordcars": "cars", "oxfordpets": "pets"})
    key = aliases.get(key.replace("-", ""), key)
    if key not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {text!r}; expected one of {', '.join(DATASET_NAMES)}")
    return key


def find_setting(dataset: str, backbone: str) -> Setting:
    """The table row of ``dataset`` with ``backbone``; one-line error when there is none."""
    for row in SETTINGS:
        if row.dataset == dataset and row.backbone == backbone:
            return row
    listed = [BACKBONES[r.backbone][0] for r in SETTINGS if r.dataset == dataset]
    raise LookupError(
        f"the authors' scripts give no settings for {DATASET_NAMES[dataset]} with "
        f"{BACKBONES[backbone][0]}; they list it with {', '.join(listed)}. Pass "
        "--n-centers, --temperature, --top-k and --retrieval-temperature to run it anyway."
    )
