"""Tests of benchmarks/reproduce_paper.py: the local-folder path end to end (tiny model,
nothing downloaded), the CIFAR-20 table, and the message when a paper dataset cannot be
downloaded."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

try:
    from ._clip_fixtures import TINY_NAME, register_tiny_config, tiny_weights_file
except ImportError:
    from _clip_fixtures import TINY_NAME, register_tiny_config, tiny_weights_file

from skgradnorm.metrics import clustering_accuracy_score

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce_paper.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("reproduce_paper", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


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


def test_cifar20_mapping_has_20_groups_of_5(script):
    table = script.check_cifar20_mapping()
    assert table.shape == (100,)
    assert sorted(set(table.tolist())) == list(range(20))
    assert np.bincount(table).tolist() == [5] * 20
    assert len(script.CIFAR100_FINE_NAMES) == 100
    assert list(script.CIFAR100_FINE_NAMES) == sorted(script.CIFAR100_FINE_NAMES)
    assert len(script.CIFAR100_COARSE_NAMES) == 20


def test_cifar20_mapping_matches_the_superclass_table(script):
    fine = script.CIFAR100_FINE_NAMES
    coarse = script.CIFAR100_COARSE_NAMES
    assert set(SUPERCLASSES) == set(coarse)
    for fine_label, coarse_label in enumerate(script.CIFAR100_FINE_TO_COARSE):
        assert fine[fine_label] in SUPERCLASSES[coarse[coarse_label]], fine[fine_label]
    np.testing.assert_array_equal(script.cifar100_to_cifar20([0, 4, 99, 58]), [4, 0, 13, 18])


def test_cifar20_mapping_check_rejects_bad_tables(script):
    bad = list(script.CIFAR100_FINE_TO_COARSE)
    bad[0] = bad[1]  # one superclass gets 6 members, another 4
    with pytest.raises(ValueError, match="exactly 5"):
        script.check_cifar20_mapping(bad)
    with pytest.raises(ValueError, match="100 integers"):
        script.check_cifar20_mapping(bad[:99])


def test_download_failure_is_reported_helpfully(script, monkeypatch, tmp_path, capsys):
    calls = []

    class OfflineCIFAR10:
        def __init__(self, root, train=True, download=False, **kwargs):
            calls.append({"root": root, "train": train, "download": download})
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    datasets = script._torchvision_datasets()
    monkeypatch.setattr(datasets, "CIFAR10", OfflineCIFAR10)
    rc = script.main(
        [
            "--datasets",
            "cifar10",
            "--data-dir",
            str(tmp_path / "data"),
            # Never reached: datasets are loaded before the model, so this does not fail.
            "--model",
            "no-such-architecture",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert calls == [{"root": str(tmp_path / "data"), "train": True, "download": True}]
    assert "Could not load CIFAR-10" in err
    assert "Temporary failure in name resolution" in err
    assert "network access" in err and "--image-folder" in err and "--data-dir" in err
    assert "no-such-architecture" not in err


COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230)]


def _make_folder(root: Path, n_train=8, n_test=4, size=24):
    rng = np.random.default_rng(0)
    from PIL import Image

    for split, n in (("train", n_train), ("test", n_test)):
        for name, colour in zip(("a_red", "b_green", "c_blue"), COLOURS, strict=False):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                noise = rng.integers(-20, 21, size=(size, size, 3))
                pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:02d}.png")


_ROW = re.compile(r"^\| (?P<dataset>[^|]+) \| (?P<method>[^|]+) \| (?P<rest>.*) \|$")


def _table_rows(text):
    rows = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if m and m["method"] != "method" and not m["method"].startswith("-"):
            rows[m["method"].strip()] = [c.strip() for c in m["rest"].split("|")]
    return rows


def test_image_folder_run_end_to_end(script, tmp_path, capsys):
    register_tiny_config()
    _make_folder(tmp_path / "imgs")
    vocab = tmp_path / "nouns.txt"
    nouns = ["red", "green", "blue", "cat", "dog", "car", "tree", "house", "# comment", "", "red"]
    vocab.write_text("\n".join(nouns) + "\n", encoding="utf-8")
    out = tmp_path / "res" / "results.json"
    rc = script.main(
        [
            "--image-folder",
            str(tmp_path / "imgs"),
            "--model",
            TINY_NAME,
            "--pretrained",
            tiny_weights_file(),
            "--device",
            "cpu",
            "--batch-size",
            "16",
            "--vocabulary",
            str(vocab),
            "--n-centers",
            "4",
            "--n-clusters",
            "3",
            "--top-k",
            "2",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    rows = _table_rows(captured.out)
    assert set(rows) == {"GradNorm", "image-only k-means"}, captured.out
    for method, cells in rows.items():
        acc, nmi, ari = (float(c) for c in cells[:3])
        assert 1 / 3 <= acc <= 1 and 0 <= nmi <= 1 and -1 <= ari <= 1, (method, cells)
        assert cells[3:] == ["n/a", "n/a", "n/a"]  # no paper numbers for a local folder
    # The noun bank was embedded through the encoder's disk cache.
    assert any((tmp_path / "cache").rglob("*"))

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["n_nouns"] == 8  # comment, blank line and the duplicate dropped
    (ds,) = report["datasets"]
    assert ds["n_train"] == 24 and ds["n_test"] == 12
    assert ds["class_names"] == ["a_red", "b_green", "c_blue"]
    assert ds["y_true"] == [0] * 4 + [1] * 4 + [2] * 4
    assert ds["settings"]["n_centers"] == 4 and ds["settings"]["n_clusters"] == 3
    by_method = {r["method"]: r for r in report["results"]}
    for method, r in by_method.items():
        y_pred = np.asarray(r["y_pred"])
        assert y_pred.shape == (12,) and set(y_pred.tolist()) <= {0, 1, 2}
        # The printed (3 decimals) and stored scores are those of the stored labels.
        assert r["acc"] == pytest.approx(clustering_accuracy_score(ds["y_true"], y_pred))
        assert r["nmi"] == pytest.approx(normalized_mutual_info_score(ds["y_true"], y_pred))
        assert r["ari"] == pytest.approx(adjusted_rand_score(ds["y_true"], y_pred))
        assert [float(c) for c in rows[method][:3]] == pytest.approx(
            [r["acc"], r["nmi"], r["ari"]], abs=5e-4
        )
    gn = by_method["GradNorm"]
    assert gn["n_centers"] == 4
    assert 1 <= gn["n_selected_nouns"] <= 4 * 2
    assert set(gn["selected_nouns"]) <= set(nouns) - {"# comment", ""}


def test_missing_split_is_reported(script, tmp_path, capsys):
    (tmp_path / "imgs" / "test" / "a").mkdir(parents=True)
    rc = script.main(["--image-folder", str(tmp_path / "imgs"), "--model", "unused"])
    assert rc == 2
    assert "no 'train' folder" in capsys.readouterr().err


def test_table_uses_paper_numbers_and_na(script):
    rows = [
        {
            "dataset": "STL-10",
            "method": "GradNorm",
            "acc": 0.97,
            "nmi": 0.9,
            "ari": 0.93,
            "paper": script.PAPER_RESULTS["stl10"],
        },
        {
            "dataset": "STL-10",
            "method": "image-only k-means",
            "acc": 0.9,
            "nmi": 0.8,
            "ari": 0.7,
            "paper": None,
        },
    ]
    table = script.format_table(rows).splitlines()
    assert table[2] == "| STL-10 | GradNorm | 0.970 | 0.900 | 0.930 | 0.983 | n/a | n/a |"
    assert table[3].endswith("| n/a | n/a | n/a |")
    assert script.PAPER_RESULTS["cifar10"] == {"acc": 0.911, "nmi": 0.826, "ari": None}
    assert script.PAPER_RESULTS["cifar20"] == {"acc": 0.606, "nmi": 0.613, "ari": None}
    assert script.PAPER_SETTINGS["cifar20"]["n_centers"] == 200


def test_paper_loaders_map_labels_and_layout(script, monkeypatch, tmp_path):
    """The torchvision loaders (faked: nothing is downloaded) give N x H x W x 3 uint8
    images; CIFAR-100's fine labels become the 20 superclasses; STL-10 is transposed."""
    rng = np.random.default_rng(0)
    seen = []

    class FakeCIFAR100:
        classes = list(script.CIFAR100_FINE_NAMES)

        def __init__(self, root, train=True, download=False):
            seen.append(("CIFAR100", train, download))
            self.data = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
            self.targets = [0, 4, 99, 58, 2, 11]

    class FakeSTL10:
        classes = [f"c{i}" for i in range(10)]

        def __init__(self, root, split="train", download=False):
            seen.append(("STL10", split, download))
            self.data = rng.integers(0, 256, size=(5, 3, 96, 96), dtype=np.uint8)
            self.labels = np.arange(5) % 10

    datasets = script._torchvision_datasets()
    monkeypatch.setattr(datasets, "CIFAR100", FakeCIFAR100)
    monkeypatch.setattr(datasets, "STL10", FakeSTL10)

    train, test = script.load_paper_dataset("cifar20", tmp_path, download=False)
    assert train.labels.tolist() == [4, 0, 13, 18, 14, 14] == test.labels.tolist()
    assert train.class_names[14] == "people" and len(train.class_names) == 20
    assert train.images.shape == (6, 32, 32, 3)

    train, test = script.load_paper_dataset("stl10", tmp_path)
    assert train.images.shape == (5, 96, 96, 3) and train.images.dtype == np.uint8
    assert seen == [
        ("CIFAR100", True, False),
        ("CIFAR100", False, False),
        ("STL10", "train", True),
        ("STL10", "test", True),
    ]

    FakeCIFAR100.classes = list(reversed(script.CIFAR100_FINE_NAMES))
    with pytest.raises(script.DatasetUnavailableError, match="not in the expected order"):
        script.load_paper_dataset("cifar20", tmp_path)
