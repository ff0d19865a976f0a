"""Tests of benchmarks/reproduce_paper.py and benchmarks/reproduce/: the settings table,
every dataset layout end to end offline (generated images, a tiny random-weight model,
torchvision faked so nothing is downloaded), the k-means protocols, and bad input."""

from __future__ import annotations

import json
import re
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from conftest import benchmark_module
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

try:
    from ._clip_fixtures import TINY_NAME, register_tiny_config, tiny_weights_file
except ImportError:
    from _clip_fixtures import TINY_NAME, register_tiny_config, tiny_weights_file

from skgradnorm.metrics import clustering_accuracy_score

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    yield from benchmark_module("reproduce_paper")


@pytest.fixture(scope="module")
def rp(script):
    """The benchmarks.reproduce package (importable once the script put the repo on the path)."""
    from benchmarks.reproduce import loaders, runner, settings

    class NS:
        pass

    ns = NS()
    ns.loaders, ns.runner, ns.settings = loaders, runner, settings
    return ns


# --------------------------------------------------------------------------- CIFAR-20

# The official CIFAR-100 superclass table (https://www.cs.toronto.edu/~kriz/cifar.html),
# written by names, independently of the script's integer table.
SUPERCLASSES = {
    "aquatic_mammals": ["beaver", "dolphin", "otter", "seal", "whale"],
    "fish": ["aquarium_fish", "flatfish", "ray", "shark", "trout"],
    "flowers": ["orchid", "poppy", "rose", "sunflower", "tulip"],
    "food_containers": ["bottle", "bowl", "can", "cup", "plate"],
    "fruit_and_vegetables": ["apple", "mushroom", "orange", "pear", "sweet_pepper"],
    "household_electrical_devices": ["clock", "keyboard", "lamp", "telephone", "television"],
    "household_furniture": ["bed", "chair", "couch", "table", "wardrobe"],
    "insects": ["bee", "beetle", "butterfly", "caterpillar", "cockroach"],
    "large_carnivores": ["bear", "leopard", "lion", "tiger", "wolf"],
    "large_man-made_outdoor_things": ["bridge", "castle", "house", "road", "skyscraper"],
    "large_natural_outdoor_scenes": ["cloud", "forest", "mountain", "plain", "sea"],
    "large_omnivores_and_herbivores": ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"],
    "medium_mammals": ["fox", "porcupine", "possum", "raccoon", "skunk"],
    "non-insect_invertebrates": ["crab", "lobster", "snail", "spider", "worm"],
    "people": ["baby", "boy", "girl", "man", "woman"],
    "reptiles": ["crocodile", "dinosaur", "lizard", "snake", "turtle"],
    "small_mammals": ["hamster", "mouse", "rabbit", "shrew", "squirrel"],
    "trees": ["maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"],
    "vehicles_1": ["bicycle", "bus", "motorcycle", "pickup_truck", "train"],
    "vehicles_2": ["lawn_mower", "rocket", "streetcar", "tank", "tractor"],
}


def test_cifar20_mapping_matches_the_superclass_table(script):
    table = script.check_cifar20_mapping()
    assert np.bincount(table).tolist() == [5] * 20
    fine, coarse = script.CIFAR100_FINE_NAMES, script.CIFAR100_COARSE_NAMES
    assert list(fine) == sorted(fine) and len(fine) == 100
    assert set(SUPERCLASSES) == set(coarse)
    for fine_label, coarse_label in enumerate(script.CIFAR100_FINE_TO_COARSE):
        assert fine[fine_label] in SUPERCLASSES[coarse[coarse_label]], fine[fine_label]
    np.testing.assert_array_equal(script.cifar100_to_cifar20([0, 4, 99, 58]), [4, 0, 13, 18])
    bad = list(script.CIFAR100_FINE_TO_COARSE)
    bad[0] = bad[1]  # one superclass gets 6 members, another 4
    with pytest.raises(ValueError, match="exactly 5"):
        script.check_cifar20_mapping(bad)
    with pytest.raises(ValueError, match="100 integers"):
        script.check_cifar20_mapping(bad[:99])


# --------------------------------------------------------------------------- the table


def test_settings_table_is_one_consistent_table(rp):
    s = rp.settings
    keys = [row.key for row in s.SETTINGS]
    assert len(keys) == len(set(keys)) == 28  # 13 datasets x ViT-B/32 + 5 x 3 backbones
    assert {row.dataset for row in s.SETTINGS} == set(s.DATASET_NAMES)
    assert {row.backbone for row in s.SETTINGS} == set(s.BACKBONES)
    for dataset in s.DATASET_NAMES:
        ks = {row.n_clusters for row in s.SETTINGS if row.dataset == dataset}
        assert len(ks) == 1, dataset  # K is the dataset's, whatever the backbone
        assert s.find_setting(dataset, "vit-b-32").dataset == dataset
    for row in s.SETTINGS:
        assert row.n_centers is None or row.n_centers > row.n_clusters
        assert 0 < row.temperature <= 0.1 and 0 < row.retrieval_temperature <= 0.03
        assert row.top_k in (3, 5)
        for value in row.reported.values():
            assert value is None or 0 < value < 1
    # A few rows, against the paper's numbers (ACC/NMI as fractions).
    cifar10 = s.find_setting("cifar10", "vit-b-32")
    assert (cifar10.n_centers, cifar10.temperature, cifar10.retrieval_temperature) == (
        250,
        0.06,
        0.009,
    )
    assert cifar10.reported == {"acc": 0.911, "nmi": 0.826, "ari": None}
    imagenet = s.find_setting("imagenet", "vit-b-32")
    assert (imagenet.n_clusters, imagenet.n_centers, imagenet.top_k) == (1000, 2000, 3)
    assert s.find_setting("cars", "vit-b-32").n_centers is None  # the scripts leave it blank
    assert {tags[2] for tags in s.BACKBONES.values()} == {"openai"}
    assert s.backbone_key("ViT-B/16") == "vit-b-16" and s.dataset_key("ImageNet-Dogs") == (
        "imagenet-dogs"
    )


def test_paper_protocol_mirrors_faiss(rp):
    params = rp.runner.kmeans_params("paper", "final", 10, 10_000)
    assert params == {
        "n_init": 20,
        "max_iter": 300,
        "tol": 0.0,
        "random_state": 0,
        "max_samples": 2560,
    }
    assert "max_samples" not in rp.runner.kmeans_params("paper", "centres", 250, 50_000)
    centres = rp.runner.kmeans_params("paper", "centres", 2000, 1_281_167)
    assert centres == {"n_init": 20, "max_iter": 300, "random_state": 0, "max_samples": 512_000}
    assert "max_samples" not in rp.runner.kmeans_params("package", "final", 10, 10_000)


def test_embed_nouns_embeds_each_distinct_string_once(rp):
    rng = np.random.default_rng(0)
    calls = []

    class Encoder:
        def encode_nouns(self, nouns):
            calls.append(list(nouns))
            return rng.normal(size=(len(nouns), 4)).astype(np.float32)

    nouns = ["head", "crane", "head", "Crane", "crane", "head"]
    E, n_distinct = rp.runner.embed_nouns(Encoder(), nouns)
    assert calls == [["head", "crane", "Crane"]] and n_distinct == 3
    assert E.shape == (6, 4)
    np.testing.assert_array_equal(E[0], E[2])
    np.testing.assert_array_equal(E[0], E[5])
    np.testing.assert_array_equal(E[1], E[4])
    assert not np.array_equal(E[1], E[3])


def test_markdown_table_puts_obtained_beside_reported(rp):
    rows = [
        {"dataset": "STL-10", "backbone": "ViT-B/32", "method": "GradNorm", "acc": 0.97,
         "nmi": 0.9, "ari": 0.93, "reported": {"acc": 0.983, "nmi": None, "ari": None}},
        {"dataset": "STL-10", "backbone": "ViT-B/32", "method": "image-only k-means",
         "acc": 0.9, "nmi": 0.8, "ari": -0.01, "reported": None},
    ]  # fmt: skip
    table = rp.runner.format_table(rows).splitlines()
    assert (
        table[2] == "| STL-10 | ViT-B/32 | GradNorm | 0.970 | 0.900 | 0.930 | 0.983 | n/a | n/a |"
    )
    assert table[3].endswith("| -0.010 | n/a | n/a | n/a |")


# --------------------------------------------------------------------------- fake data

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230)]


def _png(path: Path, label: int, rng, size=16):
    from PIL import Image

    colour = np.array(COLOURS[label % 3]) * (1 + label // 3) % 256
    noise = rng.integers(-20, 21, size=(size, size, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(colour + noise, 0, 255).astype(np.uint8)).save(path)
    return path


def _make_class_folders(root: Path, classes, n=2, nested=False, seed=0):
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        for i in range(n):
            sub = f"video{i}/" if nested else ""
            _png(root / name / f"{sub}{i:02d}.png", label, rng)


def _array_images(n, size, rng, channels_first=False):
    labels = np.arange(n) % 3
    base = np.array(COLOURS)[labels][:, None, None, :]
    images = np.clip(base + rng.integers(-20, 21, size=(n, size, size, 3)), 0, 255)
    images = images.astype(np.uint8)
    return (images.transpose(0, 3, 1, 2) if channels_first else images), labels


def install_fake_torchvision(monkeypatch, script, tmp_path):
    """Replace torchvision's dataset classes by fakes over generated data; return the log."""
    rng = np.random.default_rng(1)
    seen = []

    class FakeCIFAR10:
        classes = ["red", "green", "blue"]

        def __init__(self, root, train=True, download=False):
            seen.append(("CIFAR10", root, train, download))
            self.data, labels = _array_images(12 if train else 9, 32, rng)
            self.targets = labels.tolist()

    class FakeCIFAR100:
        classes = list(script.CIFAR100_FINE_NAMES)

        def __init__(self, root, train=True, download=False):
            seen.append(("CIFAR100", root, train, download))
            self.data, labels = _array_images(12 if train else 9, 32, rng)
            self.targets = [(0, 1, 2)[y] for y in labels]  # superclasses 4, 1, 14

    class FakeSTL10:
        classes = ["red", "green", "blue"]

        def __init__(self, root, split="train", download=False):
            seen.append(("STL10", root, split, download))
            self.data, self.labels = _array_images(12 if split == "train" else 9, 24, rng, True)

    def file_dataset(cls_name, attribute, with_classes=True):
        class Fake:
            def __init__(self, root, split="train", download=False, **kwargs):
                seen.append((cls_name, root, split, download, tuple(sorted(kwargs.items()))))
                folder = Path(tmp_path) / "tv" / cls_name / split
                n = 3 if split in ("train", "val", "trainval") else 2
                paths = [_png(folder / f"{i}.png", i % 3, rng) for i in range(3 * n)]
                setattr(self, attribute, paths)
                self._labels = [i % 3 for i in range(3 * n)]
                if with_classes:
                    self.classes = ["a", "b", "c"]

        return Fake

    datasets = script.torchvision_datasets()
    fakes = {
        "CIFAR10": FakeCIFAR10,
        "CIFAR100": FakeCIFAR100,
        "STL10": FakeSTL10,
        "DTD": file_dataset("DTD", "_image_files"),
        "OxfordIIITPet": file_dataset("OxfordIIITPet", "_images"),
        "Flowers102": file_dataset("Flowers102", "_image_files", with_classes=False),
        "Food101": file_dataset("Food101", "_image_files"),
        "FGVCAircraft": file_dataset("FGVCAircraft", "_image_files"),
    }
    for name, fake in fakes.items():
        monkeypatch.setattr(datasets, name, fake)
    return seen


def make_folder_datasets(root: Path, rp, ucf101=True):
    """ImageNet (holding the ImageNet-10 and -Dogs ids plus one more), UCF101 (frames in
    per-video folders), Cars; the test split is 'val' except for Cars ('test')."""
    wnids = sorted(set(rp.loaders.IMAGENET10_WNIDS) | set(rp.loaders.IMAGENET_DOGS_WNIDS))
    wnids.append("n99999999")
    for split in ("train", "val"):
        _make_class_folders(root / "imagenet" / split, wnids, n=2)
        if ucf101:
            _make_class_folders(root / "ucf101" / split, ["Archery", "Biking", "Diving"], 2, True)
    for split in ("train", "test"):
        _make_class_folders(root / "cars" / split, ["audi", "bmw", "fiat"], n=3)
    return wnids


# --------------------------------------------------------------------------- loaders


def test_torchvision_loaders_give_the_authors_splits(script, rp, monkeypatch, tmp_path):
    seen = install_fake_torchvision(monkeypatch, script, tmp_path)
    load = rp.loaders.load_dataset
    root = tmp_path / "root"

    train, test = load("cifar20", root, download=False)
    assert set(train.labels.tolist()) == {4, 1, 14} and len(train.class_names) == 20
    train, test = load("stl10", root)
    assert train.images.shape == (12, 24, 24, 3) and train.images.dtype == np.uint8
    train, test = load("dtd", root)  # train + val / test
    assert len(train) == 18 and len(test) == 6 and train.class_names == ["a", "b", "c"]
    assert all(Path(p).is_file() for p in train.images)
    train, test = load("flowers", root)  # train + val / test; no class names in torchvision
    assert len(train) == 18 and train.class_names == ["0", "1", "2"]
    train, test = load("aircraft", root)
    assert len(train) == 9 and len(test) == 6
    load("pets", root)
    load("food", root)
    splits = [(s[0], s[2]) for s in seen if s[0] not in ("CIFAR100", "STL10")]
    assert splits == [
        ("DTD", "train"), ("DTD", "val"), ("DTD", "test"),
        ("Flowers102", "train"), ("Flowers102", "val"), ("Flowers102", "test"),
        ("FGVCAircraft", "trainval"), ("FGVCAircraft", "test"),
        ("OxfordIIITPet", "trainval"), ("OxfordIIITPet", "test"),
        ("Food101", "train"), ("Food101", "test"),
    ]  # fmt: skip
    assert all(s[1] == str(root) for s in seen)  # --data-root is where torchvision looks
    aircraft = [s for s in seen if s[0] == "FGVCAircraft"]
    assert all(("annotation_level", "variant") in s[4] for s in aircraft)


def test_folder_loaders_read_the_listed_wordnet_ids(rp, tmp_path):
    wnids = make_folder_datasets(tmp_path, rp)
    load = rp.loaders.load_dataset
    train, test = load("imagenet10", tmp_path)  # no imagenet-10/: read from imagenet/
    assert train.class_names == list(rp.loaders.IMAGENET10_WNIDS)
    assert len(train) == 20 and len(test) == 20
    assert all(Path(p).parent.name in rp.loaders.IMAGENET10_WNIDS for p in test.images)
    train, test = load("imagenet-dogs", tmp_path)
    assert len(train.class_names) == 15 and len(test) == 30
    train, test = load("imagenet", tmp_path)
    assert train.class_names == wnids and len(test) == 2 * len(wnids)
    train, test = load("ucf101", tmp_path)  # frames in per-video folders are found
    assert len(train) == 6 and train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    train, test = load("cars", tmp_path)
    assert len(test) == 9 and "/test/" in test.images[0]
    # A prepared imagenet-10/ folder wins over imagenet/.
    _make_class_folders(tmp_path / "imagenet-10" / "train", rp.loaders.IMAGENET10_WNIDS, n=1)
    _make_class_folders(tmp_path / "imagenet-10" / "val", rp.loaders.IMAGENET10_WNIDS, n=1)
    train, _ = load("imagenet10", tmp_path)
    assert len(train) == 10 and "imagenet-10" in train.images[0]


@pytest.mark.parametrize(
    ("layout", "dataset", "message"),
    [
        ("nothing", "imagenet", r"imagenet not found; expected .*imagenet/train/<class>"),
        ("no-val", "ucf101", r"has no 'val' or 'test' folder"),
        ("flat-val", "imagenet", r"holds images directly: sort them into class folders"),
        ("missing-wnids", "imagenet-dogs", r"lacks 14 of the 15 class folders expected"),
        ("no-images", "cars", r"no images \(.*\) below the class folders"),
    ],
)
def test_wrong_folder_layouts_are_one_line(rp, tmp_path, layout, dataset, message):
    rng = np.random.default_rng(0)
    if layout == "no-val":
        _make_class_folders(tmp_path / "ucf101" / "train", ["a", "b"])
    elif layout == "flat-val":
        _make_class_folders(tmp_path / "imagenet" / "train", ["n01440764"])
        _png(tmp_path / "imagenet" / "val" / "ILSVRC2012_val_00000001.png", 0, rng)
    elif layout == "missing-wnids":
        for split in ("train", "val"):
            _make_class_folders(tmp_path / "imagenet" / split, ["n02085936"])
    elif layout == "no-images":
        for split in ("train", "test"):
            (tmp_path / "cars" / split / "audi").mkdir(parents=True)
    with pytest.raises(rp.loaders.DatasetUnavailableError, match=message) as err:
        rp.loaders.load_dataset(dataset, tmp_path)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--datasets", "imagenet10", "--backbones", "rn50"],
         r"no settings for ImageNet-10 with RN50; they list it with ViT-B/32\. Pass --n-centers"),
        (["--datasets", "cars"], r"no C for Stanford Cars with ViT-B/32; pass --n-centers"),
        (["--vocabulary", "no-such-file.txt"], r"expected 'paper', 'unique' or a noun file"),
        (["--datasets", "imagenet", "--data-root", "{tmp}"], r"ImageNet-1K: .* not found"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_before_any_model(script, tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    # The model is never built: a wrong architecture name would otherwise fail instead.
    assert script.main([*argv, "--model", "no-such-architecture"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and re.search(message, lines[0]), err
    assert "no-such-architecture" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--datasets", "cifar11"], r"unknown dataset 'cifar11'; expected one of cifar10, "),
        (["--backbones", "ViT-H/14"], r"unknown backbone 'ViT-H/14'; expected one of vit-b-32"),
    ],
)
def test_unknown_names_are_rejected_by_the_parser(script, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        script.main(argv)
    assert exit_.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_download_failure_says_where(script, monkeypatch, tmp_path, capsys):
    calls = []

    class OfflineCIFAR10:
        def __init__(self, root, train=True, download=False, **kwargs):
            calls.append({"root": root, "train": train, "download": download})
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(script.torchvision_datasets(), "CIFAR10", OfflineCIFAR10)
    data_root = tmp_path / "data"
    rc = script.main(["--datasets", "cifar10", "--data-root", str(data_root), "--model", "x"])
    err = capsys.readouterr().err
    assert rc == 2
    assert calls == [{"root": str(data_root), "train": True, "download": True}]
    assert f"reading {data_root}; torchvision downloads it there" in err  # said before
    assert "Could not load CIFAR-10" in err and "Temporary failure in name resolution" in err
    assert "network access" in err and "--image-folder" in err and "--data-root" in err


# --------------------------------------------------------------------------- end to end


def _tiny_args(tmp_path, *extra):
    register_tiny_config()
    vocab = tmp_path / "nouns.txt"
    nouns = ["red", "green", "blue", "cat", "dog", "car", "tree", "house", "# comment", ""]
    vocab.write_text("\n".join(nouns) + "\n", encoding="utf-8")
    return [
        "--model", TINY_NAME, "--pretrained", tiny_weights_file(), "--device", "cpu",
        "--batch-size", "16", "--vocabulary", str(vocab), "--cache-dir", str(tmp_path / "cache"),
        "--n-centers", "3", "--n-clusters", "3", "--top-k", "2", *extra,
    ]  # fmt: skip


def _check_report(report, rp):
    by_run = {(r["dataset"], r["backbone"]): r for r in report["runs"]}
    for row in report["results"]:
        run = by_run[row["dataset"], row["backbone"]]
        y_true, y_pred = np.asarray(run["y_true"]), np.asarray(row["y_pred"])
        assert y_pred.shape == y_true.shape == (run["n_test"],)
        assert row["acc"] == pytest.approx(clustering_accuracy_score(y_true, y_pred))
        assert row["nmi"] == pytest.approx(normalized_mutual_info_score(y_true, y_pred))
        assert row["ari"] == pytest.approx(adjusted_rand_score(y_true, y_pred))
        assert row["reported"] is None  # settings were overridden, so nothing to compare
        if row["method"] == "GradNorm":
            assert 1 <= len(row["selected_nouns"]) <= 3 * 2
            assert row["n_centers"] == 3


@pytest.mark.slow
def test_every_dataset_layout_end_to_end(script, rp, monkeypatch, tmp_path, capsys):
    install_fake_torchvision(monkeypatch, script, tmp_path)
    make_folder_datasets(tmp_path / "root", rp)
    out = tmp_path / "res" / "all.json"
    datasets = ",".join(rp.settings.DATASET_NAMES)
    argv = ["--datasets", datasets, "--data-root", str(tmp_path / "root"), "--out", str(out)]
    rc = script.main(_tiny_args(tmp_path, *argv, "--protocol", "package"))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [r["key"] for r in report["runs"]] == list(rp.settings.DATASET_NAMES)
    assert len(report["results"]) == 2 * 13 and report["skipped"] == []
    assert report["protocol"] == "package" and report["kmeans"]["final"]["n_init"] == 10
    _check_report(report, rp)
    runs = {r["key"]: r for r in report["runs"]}
    assert runs["imagenet10"]["class_names"] == list(rp.loaders.IMAGENET10_WNIDS)
    assert runs["dtd"]["n_train"] == 18 and runs["ucf101"]["n_test"] == 6
    markdown = out.with_suffix(".md").read_text(encoding="utf-8")
    assert markdown.count("| GradNorm |") == 13 and "Protocol `package`" in markdown
    assert captured.out.count("| image-only k-means |") == 13


@pytest.mark.slow
def test_all_runs_the_whole_table_and_reports_missing_data(
    script, rp, monkeypatch, tmp_path, capsys
):
    install_fake_torchvision(monkeypatch, script, tmp_path)
    make_folder_datasets(tmp_path / "root", rp, ucf101=False)  # UCF101 is missing
    # The whole table, cut to five rows (two backbones, three layouts, one missing) to
    # keep the test short; every layout runs in test_every_dataset_layout_end_to_end.
    table = rp.settings.SETTINGS
    keep = {"cifar10/vit-b-32", "cifar10/rn50", "dtd/vit-l-14", "cars/vit-b-32", "ucf101/vit-b-32"}
    monkeypatch.setattr(script, "SETTINGS", tuple(r for r in table if r.key in keep))
    out = tmp_path / "all.json"
    argv = ["--all", "--protocol", "package", "--data-root", str(tmp_path / "root")]
    rc = script.main(_tiny_args(tmp_path, *argv, "--out", str(out)))
    err = capsys.readouterr().err
    assert rc == 2  # something was skipped, the rest still ran and was written
    report = json.loads(out.read_text(encoding="utf-8"))
    ran = {(r["key"], r["backbone"]) for r in report["runs"]}
    assert ran == {("cifar10", "ViT-B/32"), ("cifar10", "RN50"), ("dtd", "ViT-L/14"),
                   ("cars", "ViT-B/32")}  # fmt: skip
    (skip,) = report["skipped"]
    assert skip["dataset"] == "UCF101" and "ucf101 not found" in skip["reason"]
    assert "skipped UCF101 / ViT-B/32" in err
    _check_report(report, rp)
    assert "- UCF101 / ViT-B/32: " in out.with_suffix(".md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_image_folder_run_end_to_end(script, tmp_path, capsys):
    _make_class_folders(tmp_path / "imgs" / "train", ["a_red", "b_green", "c_blue"], n=4)
    _make_class_folders(tmp_path / "imgs" / "test", ["a_red", "b_green", "c_blue"], n=2)
    out = tmp_path / "res.json"
    argv = ["--image-folder", str(tmp_path / "imgs"), "--protocol", "paper", "--out", str(out)]
    rc = script.main(_tiny_args(tmp_path, *argv))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["n_nouns"] == 8  # comment and blank line dropped
    (run,) = report["runs"]
    assert run["class_names"] == ["a_red", "b_green", "c_blue"]
    assert run["y_true"] == [0, 0, 1, 1, 2, 2] and run["n_train"] == 12
    for row in report["results"]:
        y_pred = np.asarray(row["y_pred"])
        assert row["acc"] == pytest.approx(clustering_accuracy_score(run["y_true"], y_pred))
    assert any((tmp_path / "cache").rglob("*"))  # nouns went through the encoder's cache
    assert report["kmeans"] == {
        "centres": {"n_init": 20, "max_iter": 300},
        "final": {"n_init": 20, "max_iter": 300, "tol": 0.0},
        "points_per_centroid": 256,
    }
    assert report["results"][0]["final_kmeans"]["n_init"] == 20


def test_docs_list_the_command_of_every_row(rp):
    text = (REPO / "docs" / "reproducing.rst").read_text(encoding="utf-8")
    for row in rp.settings.SETTINGS:
        command = f"reproduce_paper.py --datasets {row.dataset} --backbones {row.backbone}"
        assert command in text, row.key
    for _, model, pretrained in rp.settings.BACKBONES.values():
        assert re.search(rf"``{model}``\s+``{pretrained}``", text), model


def test_plan_fills_rows_from_the_table_or_from_complete_overrides(script):
    parse = script.build_parser().parse_args
    jobs, skipped = script.plan(parse(["--datasets", "cifar10,dtd", "--backbones", "rn50"]))
    assert [(j["dataset"], j["backbone"]) for j in jobs] == [("cifar10", "rn50"), ("dtd", "rn50")]
    assert jobs[0]["settings"]["temperature"] == 0.1 and jobs[1]["settings"]["n_clusters"] == 47
    assert set(jobs[0]["reported"].values()) == {None} and skipped == []  # no RN50 numbers
    (job,) = script.plan(parse(["--datasets", "cifar10", "--top-k", "3"]))[0]
    assert job["overridden"] == ["top_k"] and job["reported"] is None
    (job,) = script.plan(parse(["--datasets", "cifar10", "--top-k", "5"]))[0]  # no change
    assert job["reported"]["acc"] == 0.911
    # A pair the authors do not list runs when every method setting is given; K is the
    # dataset's own.
    argv = ["--datasets", "imagenet10", "--backbones", "rn50", "--n-centers", "40"]
    argv += ["--temperature", "0.02", "--top-k", "5", "--retrieval-temperature", "0.006"]
    (job,) = script.plan(parse(argv))[0]
    assert job["settings"]["n_clusters"] == 10 and job["settings"]["n_centers"] == 40
    # --all skips, with its reason, what a single run would refuse (Cars has no C).
    jobs, skipped = script.plan(parse(["--all"]))
    assert len(jobs) == 27 and [s["dataset"] for s in skipped] == ["Stanford Cars"]
    assert "pass --n-centers" in skipped[0]["reason"]
    assert parse(["--data-dir", "/x"]).data_root == Path("/x")  # the old name still works
