"""The command line: ``skgradnorm demo`` and ``skgradnorm cluster``, and the report files."""

import contextlib
import csv
import html
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _clip_fixtures import register_tiny_config, tiny_weights_file
from PIL import Image
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from skgradnorm._cli import main
from skgradnorm._cli._inputs import CLIError, read_labels
from skgradnorm._clip._images import find_images
from skgradnorm._reporting._out_dir import OUTPUT_FILES
from skgradnorm.metrics import clustering_accuracy_score

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 200)}
EXTENSIONS = [(".png", "PNG"), (".jpg", "JPEG"), (".PNG", "PNG"), (".bmp", "BMP")]
VOCABULARY = (
    "apple tomato cherry strawberry grass leaf frog lime sky ocean sea jeans car dog cat "
    "house tree river stone cloud"
).split()
DATA_IMG = re.compile(r'<img src="data:image/(png|jpeg);base64,[A-Za-z0-9+/=]+"')


def _make_images(root: Path) -> list[str]:
    """12 small noisy colour pictures in 3 sub-folders, plus files that are not images."""
    rng = np.random.default_rng(0)
    rel = []
    for name, colour in COLOURS.items():
        for j, (ext, fmt) in enumerate(EXTENSIONS):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, size=(40, 48, 3)), 0, 255)
            path = root / name / f"img{j}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(path, format=fmt)
            rel.append(f"{name}/img{j}{ext}")
    (root / "notes.txt").write_text("not an image\n")
    (root / "red" / "._img0.png").write_bytes(b"macOS resource fork, not a picture")  # hidden
    return sorted(rel)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """(image folder, sorted relative paths, labels CSV, vocabulary file)."""
    base = tmp_path_factory.mktemp("cli")
    root = base / "images"
    rel = _make_images(root)
    labels = base / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{p.split('/')[0]}\n" for p in rel))
    vocab = base / "vocab.txt"
    vocab.write_text("\n".join(VOCABULARY) + "\n\n")
    return root, rel, labels, vocab


def _tiny_args(out, cache):
    register_tiny_config()  # the CLI accepts any open_clip model registered in the process
    return [
        "--out",
        str(out),
        "--model",
        "skgradnorm-tiny",
        "--pretrained",
        tiny_weights_file(),
        "--cache-dir",
        str(cache),
        "--device",
        "cpu",
        "--n-init",
        "3",
    ]


def _run(argv):
    """main(argv) -> (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cluster_run(images, tmp_path_factory):
    """One successful ``skgradnorm cluster`` run with --labels."""
    root, rel, labels, vocab = images
    base = tmp_path_factory.mktemp("run")
    out = base / "out"
    argv = [
        "cluster",
        str(root),
        "-k",
        "3",
        "--vocabulary",
        str(vocab),
        "--labels",
        str(labels),
        "--quiet",
        *_tiny_args(out, base / "cache"),
    ]
    code, stdout, stderr = _run(argv)
    assert code == 0, stderr
    return out, stdout, stderr


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


# --------------------------------------------------------------------------- cluster


@pytest.mark.slow
def test_cluster_assignments_csv(cluster_run, images):
    out, _, _ = cluster_run
    _, rel, _, _ = images
    rows = _read_csv(out / "assignments.csv")
    assert rows[0] == ["path", "cluster"]
    assert [r[0] for r in rows[1:]] == rel  # every image once, sorted, no .txt or hidden file
    assert len(rel) == 12
    assert {int(r[1]) for r in rows[1:]} <= {0, 1, 2}


@pytest.mark.slow
def test_cluster_selected_nouns_csv(cluster_run):
    out, _, _ = cluster_run
    rows = _read_csv(out / "selected_nouns.csv")
    assert rows[0] == ["noun", "center", "score"]
    doc = json.loads((out / "clusters.json").read_text())
    n_centers = doc["parameters"]["n_centers"]
    assert n_centers == round(np.sqrt(12))  # "auto"
    body = rows[1:]
    assert 1 <= len(body) <= n_centers * 5 and len(body) == doc["n_selected_nouns"]
    assert {r[0] for r in body} <= set(VOCABULARY)
    assert all(0 <= int(r[1]) < n_centers and np.isfinite(float(r[2])) for r in body)


@pytest.mark.slow
def test_cluster_clusters_json(cluster_run):
    out, _, _ = cluster_run
    doc = json.loads((out / "clusters.json").read_text())
    assignments = {p: int(c) for p, c in _read_csv(out / "assignments.csv")[1:]}
    assert doc["n_images"] == 12 and doc["n_clusters"] == 3 and doc["model"] == "skgradnorm-tiny"
    assert [c["cluster"] for c in doc["clusters"]] == [0, 1, 2]
    assert sum(c["size"] for c in doc["clusters"]) == 12
    selected = {r[0] for r in _read_csv(out / "selected_nouns.csv")[1:]}
    for c in doc["clusters"]:
        assert set(c) == {"cluster", "size", "nouns", "noun_cosines", "examples"}
        assert c["size"] == sum(1 for k in assignments.values() if k == c["cluster"])
        assert 1 <= len(c["nouns"]) <= 5 and set(c["nouns"]) <= selected
        assert c["noun_cosines"] == sorted(c["noun_cosines"], reverse=True)
        assert len(c["examples"]) == min(12, c["size"])
        assert all(assignments[p] == c["cluster"] for p in c["examples"])


@pytest.mark.slow
def test_cluster_report_html(cluster_run):
    out, _, _ = cluster_run
    page = (out / "report.html").read_text()
    doc = json.loads((out / "clusters.json").read_text())
    assert page.startswith("<!DOCTYPE html>")
    assert len(DATA_IMG.findall(page)) == sum(min(12, c["size"]) for c in doc["clusters"])
    assert page.count("<img") == len(DATA_IMG.findall(page))
    for c in doc["clusters"]:
        assert f'id="cluster-{c["cluster"]}"' in page
        assert f"{c['size']} images" in page
        for noun in c["nouns"]:
            assert f">{html.escape(noun)}</span>" in page
    assert "http" not in page.lower() and "<script" not in page.lower()
    assert "<link" not in page.lower() and "url(" not in page.lower()


@pytest.mark.slow
def test_cluster_labels_metrics(cluster_run, images):
    out, stdout, _ = cluster_run
    _, rel, _, _ = images
    metrics = json.loads((out / "metrics.json").read_text())
    pred = [int(r[1]) for r in _read_csv(out / "assignments.csv")[1:]]
    truth = [p.split("/")[0] for p in rel]
    assert metrics["ACC"] == pytest.approx(clustering_accuracy_score(truth, pred))
    assert metrics["NMI"] == pytest.approx(normalized_mutual_info_score(truth, pred))
    assert metrics["ARI"] == pytest.approx(adjusted_rand_score(truth, pred))
    assert metrics["n_samples"] == 12 and metrics["n_classes"] == 3
    assert f"ACC {metrics['ACC']:.3f}" in stdout


@pytest.mark.slow
def test_cluster_summary(cluster_run):
    out, stdout, stderr = cluster_run
    assert "Clustered 12 images into 3 clusters" in stdout
    assert stdout.count("  cluster ") == 3
    assert re.search(r"Timings: find images [\d.]+ s, load model [\d.]+ s, embed nouns", stdout)
    assert str((out / "report.html").resolve()) in stdout
    assert stderr == ""  # --quiet: no progress bars or step messages


def test_cluster_overwrite(images, tmp_path, capsys):
    root, _, labels, vocab = images
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("{}")  # a stale result
    (out / "keep.txt").write_text("not ours")
    argv = [
        "cluster",
        str(root),
        "-k",
        "2",
        "--vocabulary",
        str(vocab),
        *_tiny_args(out, tmp_path / "c"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds results (metrics.json)" in err and "--overwrite" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (out / "report.html").exists()

    assert main([*argv, "--overwrite"]) == 0  # not quiet: step messages; not a terminal: no bars
    captured = capsys.readouterr()
    assert "[1/4] embedding 20 distinct nouns: about " in captured.err
    assert "[2/4] embedding 12 images" in captured.err and "Embedding images" not in captured.err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "assignments.csv",
            "clusters",
            "clusters.json",
            "embeddings.json",
            "embeddings.npy",
            "keep.txt",
            "report.html",
            "selected_nouns.csv",
        ]
    )  # the stale metrics.json is gone, other files are kept
    assert json.loads((out / "clusters.json").read_text())["n_clusters"] == 2


def _expect_error(argv, capsys, *fragments, one_line=True):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("skgradnorm cluster: error: ")
    assert "Traceback" not in err
    if one_line:
        assert err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_cluster_error_no_images(tmp_path, capsys):
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    (tmp_path / "imgs" / "sub" / "readme.txt").write_text("hello")
    argv = ["cluster", str(tmp_path / "imgs"), "-k", "2", *_tiny_args(tmp_path / "out", tmp_path)]
    _expect_error(argv, capsys, "no images found", ".webp")
    assert not (tmp_path / "out").exists()


def test_cluster_error_unreadable_images_all_listed(images, tmp_path, capsys):
    root, rel, _, vocab = images
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "good.png").write_bytes((root / rel[0]).read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (folder / "empty.JPG").write_bytes(b"")
    argv = [
        "cluster",
        str(folder),
        "-k",
        "1",
        "--vocabulary",
        str(vocab),
        "--quiet",
        *_tiny_args(tmp_path / "out", tmp_path / "cache"),
    ]
    err = _expect_error(
        argv, capsys, "2 image(s) could not be read", "broken.png", "empty.JPG", one_line=False
    )
    assert "good.png" not in err
    assert not (tmp_path / "out" / "report.html").exists()


def test_cluster_error_too_many_clusters(images, tmp_path, capsys):
    root = images[0]
    argv = ["cluster", str(root), "-k", "13", *_tiny_args(tmp_path / "out", tmp_path)]
    _expect_error(argv, capsys, "--n-clusters 13 is larger than the number of images (12)")
    argv = [
        "cluster",
        str(root),
        "-k",
        "2",
        "--n-centers",
        "20",
        *_tiny_args(tmp_path / "out", tmp_path),
    ]
    _expect_error(argv, capsys, "--n-centers 20 is larger than the number of images (12)")


@pytest.mark.parametrize(
    "pretrained, fragments",
    [
        ("openai", ["pretrained='openai'", "pass them locally", "--pretrained local-dir:"]),
        ("missing/weights.pt", ["looks like a path but no such file"]),
    ],
)
def test_cluster_error_weights(images, tmp_path, capsys, monkeypatch, pretrained, fragments):
    from huggingface_hub import constants

    # no weights cached anywhere (as on a fresh machine): the tag fails before open_clip loads,
    # and the advice is in the command line's words
    (tmp_path / "empty_hub").mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty_hub"))
    monkeypatch.setenv("HOME", str(tmp_path))
    root, _, _, vocab = images
    argv = [
        "cluster",
        str(root),
        "-k",
        "2",
        "--vocabulary",
        str(vocab),
        "--quiet",
        *_tiny_args(tmp_path / "out", tmp_path),
        "--pretrained",
        pretrained,
    ]
    _expect_error(argv, capsys, *fragments)


@pytest.mark.parametrize("kind", ["garbage", "other_architecture"])
def test_cluster_error_unloadable_weights_is_one_line(images, tmp_path, capsys, kind):
    import torch

    root, _, _, vocab = images
    weights = tmp_path / "weights.pt"
    if kind == "garbage":
        weights.write_bytes(b"this is not a checkpoint" * 10)
    else:
        torch.save({"visual.proj": torch.zeros(3, 3)}, weights)  # not this architecture
    argv = [
        "cluster",
        str(root),
        "-k",
        "2",
        "--vocabulary",
        str(vocab),
        "--quiet",
        *_tiny_args(tmp_path / "out", tmp_path),
        "--pretrained",
        str(weights),
    ]
    _expect_error(argv, capsys, "cannot load the model", str(weights))
    assert not (tmp_path / "out" / "assignments.csv").exists()


def test_cluster_error_labels_missing_images(images, tmp_path, capsys):
    root, rel, _, vocab = images
    labels = tmp_path / "labels.csv"
    labels.write_text("".join(f"{root / p},{p.split('/')[0]}\n" for p in rel[2:]))  # absolute paths
    argv = [
        "cluster",
        str(root),
        "-k",
        "2",
        "--labels",
        str(labels),
        *_tiny_args(tmp_path / "o", tmp_path),
    ]
    _expect_error(argv, capsys, "2 of 12 images have no label", rel[0], rel[1])


def test_cluster_error_bad_inputs(images, tmp_path, capsys):
    root, _, _, _ = images
    base = _tiny_args(tmp_path / "out", tmp_path)
    _expect_error(
        ["cluster", str(tmp_path / "nowhere"), "-k", "2", *base], capsys, "is not a folder"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    _expect_error(
        ["cluster", str(root), "-k", "2", "--vocabulary", str(empty), *base],
        capsys,
        "holds no nouns",
    )
    (tmp_path / "file").write_text("x")
    argv = ["cluster", str(root), "-k", "2", *_tiny_args(tmp_path / "file", tmp_path)]
    _expect_error(argv, capsys, "exists and is not a folder")


def test_cluster_rejects_bad_options(images, tmp_path, capsys):
    root = images[0]
    for bad in (
        ["-k", "0"],
        ["-k", "2", "--temperature", "0"],
        ["-k", "2", "--n-centers", "many"],
        ["-k", "2", "--strategy", "magic"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(["cluster", str(root), "--out", str(tmp_path), *bad])
        assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


# --------------------------------------------------------------------------- helpers


def test_find_images_recursive_sorted_case_insensitive(tmp_path):
    for name in [
        "b/z.JPEG",
        "a.webp",
        "b/a.Tif",
        "c/d/e.gif",
        "x.txt",
        "y.png.bak",
        ".h/i.png",
        "b/.j.png",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert find_images(tmp_path) == ["a.webp", "b/a.Tif", "b/z.JPEG", "c/d/e.gif"]


def test_read_labels_relative_absolute_and_header(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    (root / "s").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    labels = tmp_path / "l.csv"
    labels.write_text(f"s/a.png,cat\n{root / 'b.png'},dog\nimgs/c.png,cow\nother.png,x\n")
    assert read_labels(labels, root, ["b.png", "c.png", "s/a.png"]) == ["dog", "cow", "cat"]
    for text in ("path\ns/a.png\n", "s/a.png, \n"):  # no label column, an empty label
        labels.write_text(text)
        with pytest.raises(CLIError, match="has no label"):
            read_labels(labels, root, ["s/a.png"])


# --------------------------------------------------------------------------- demo


@pytest.mark.slow
def test_demo_reports_gradnorm_beating_image_only(capsys, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--n-samples", "300", "--seed", "1", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    acc = {
        m[0].strip(): float(m[1])
        for m in re.findall(r"^\s+(.+?)\s+ACC (\d\.\d+)", stdout, flags=re.M)
    }
    assert set(acc) == {
        "image-only spherical k-means",
        "language-assisted, all nouns (no filter)",
        "language-assisted, GradNorm nouns",
    }
    assert acc["language-assisted, GradNorm nouns"] > acc["image-only spherical k-means"]
    assert "GradNorm kept" in stdout

    # ... and writes the report of the GradNorm clustering.
    assert {p.name for p in out.iterdir()} == set(OUTPUT_FILES)
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"{metrics['ACC']:.3f}" == f"{acc['language-assisted, GradNorm nouns']:.3f}"
    doc = json.loads((out / "clusters.json").read_text())
    assert doc["source"] == "demo" and sum(c["size"] for c in doc["clusters"]) == 300
    assert len(_read_csv(out / "assignments.csv")) == 301
    page = (out / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == sum(
        min(12, c["size"]) for c in doc["clusters"]
    )
    assert page.count("<section") == 5 and "http" not in page.lower()
    assert all(f">{html.escape(n)}</span>" in page for c in doc["clusters"] for n in c["nouns"])
    assert str((out / "report.html").resolve()) in stdout

    # The demo replaces its own output; other results need --overwrite.
    small = ["demo", "--n-samples", "40", "--n-classes", "2", "--out", str(out)]
    assert main(small) == 0
    assert json.loads((out / "clusters.json").read_text())["n_images"] == 40
    assert (out / "report.html").read_text() != page
    (out / "clusters.json").write_text('{"source": "cluster"}')
    capsys.readouterr()
    assert main(small) == 2
    err = capsys.readouterr().err
    assert err.startswith("skgradnorm demo: error: ") and "--overwrite" in err


def test_help(capsys):
    proc = subprocess.run(
        [sys.executable, "-m", "skgradnorm", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "demo" in proc.stdout and "cluster" in proc.stdout
    with pytest.raises(SystemExit) as exc:
        main(["cluster", "--help"])
    assert exc.value.code == 0
    usage = capsys.readouterr().out
    options = "--n-clusters --pretrained --vocabulary --labels --overwrite --quiet --n-centers "
    options += "--top-k --retrieval-temperature --strategy --n-init --model --device --cache-dir"
    for option in options.split():
        assert option in usage


def test_cli_defaults_are_the_estimators_defaults():
    import inspect

    from skgradnorm import CLIPEncoder, GradNormNounSelector, LanguageAssistedClusterer
    from skgradnorm._cli._defaults import estimator_defaults, module_constant
    from skgradnorm._cli._parser import build_parser
    from skgradnorm._selector import STRATEGIES

    for module, cls in (
        ("_selector", GradNormNounSelector),
        ("_clusterer", LanguageAssistedClusterer),
        ("_clip._encoder", CLIPEncoder),
    ):
        signature = inspect.signature(cls.__init__).parameters
        read = estimator_defaults(module, cls.__name__)
        assert read and all(read[name] == signature[name].default for name in read)
    assert module_constant("_selector", "STRATEGIES") == STRATEGIES
    args = build_parser().parse_args(["cluster", "imgs", "-k", "3", "-o", "out"])
    selector = inspect.signature(GradNormNounSelector.__init__).parameters
    for option in ("temperature", "top_k", "retrieval_temperature", "strategy", "n_centers"):
        assert getattr(args, option) == selector[option].default
    assert args.n_init == inspect.signature(LanguageAssistedClusterer).parameters["n_init"].default


def test_import_and_help_load_no_torch():
    code = (
        "import sys, skgradnorm, skgradnorm.exceptions\n"
        "from skgradnorm._cli._parser import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'open_clip') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_find_images_follows_folder_links_without_looping(tmp_path):
    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "y.JPG").write_bytes(b"")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)  # a cycle
    assert find_images(root) == ["a/x.png", "linked/y.JPG"]


@pytest.mark.slow
def test_embed_then_cluster_from_the_embeddings_folder(images, cluster_run, tmp_path):
    pytest.importorskip("dask")
    root, rel, labels, vocab = images
    emb = tmp_path / "emb"
    tiny = _tiny_args(tmp_path / "unused", tmp_path / "cache")
    model_args = tiny[2:8] + tiny[8:10]  # --model, --pretrained, --cache-dir, --device
    code, stdout, stderr = _run(["embed", str(root), "--out", str(emb), *model_args])
    assert code == 0, stderr
    assert "Embedded 12 images" in stdout and (emb / "manifest.json").is_file()
    out = tmp_path / "out"
    argv = [
        "cluster",
        "--embeddings",
        str(emb),
        str(root),
        "-k",
        "3",
        "--vocabulary",
        str(vocab),
        "--quiet",
        *_tiny_args(out, tmp_path / "cache"),
    ]
    code, _, stderr = _run(argv)
    assert code == 0, stderr
    # the same embeddings, seeds and settings as the direct run: the same assignments
    direct, _, _ = cluster_run
    assert _read_csv(out / "assignments.csv") == _read_csv(direct / "assignments.csv")


def test_cluster_needs_images_or_embeddings(tmp_path, capsys):
    _expect_error(["cluster", "-k", "2", "-o", str(tmp_path / "o")], capsys, "give IMAGE_DIR")
    _expect_error(
        ["cluster", "--embeddings", str(tmp_path), "-k", "2", "-o", str(tmp_path / "o")],
        capsys,
        "nor an embeddings folder",
    )


@pytest.mark.slow
def test_cluster_chooses_k_and_settings_without_labels(images, tmp_path):
    root, rel, labels, vocab = images
    out = tmp_path / "out"
    argv = [
        "cluster",
        str(root),
        "-k",
        "auto",
        "--tune",
        "--tune-grid",
        '{"temperature": [0.02, 0.05], "n_centers": [6]}',
        "--vocabulary",
        str(vocab),
        "--quiet",
        *_tiny_args(out, tmp_path / "cache"),
    ]
    code, stdout, stderr = _run(argv)
    assert code == 0, stderr
    document = json.loads((out / "clusters.json").read_text())
    k = document["parameters"]["n_clusters"]
    assert isinstance(k, int) and 2 <= k and document["n_clusters"] == k
    assert document["parameters"]["temperature"] in (0.02, 0.05)
    assert any("K = " in line for line in document["choices"])
    assert any("Chose" in line for line in document["choices"])
    page = (out / "report.html").read_text()
    assert "Number of clusters" in page and "Settings tried" in page and "<svg" in page
    assert f"Clustered 12 images into {k} clusters" in stdout


@pytest.mark.parametrize(
    "grid, fragment",
    [("not json", "expected a JSON object"), ('{"speed": [1]}', "unknown --tune-grid key")],
)
def test_tune_grid_errors(grid, fragment, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cluster", str(tmp_path), "-k", "2", "-o", str(tmp_path / "o"), "--tune-grid", grid])
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize("where", ["inside_a_file", "proc"])
def test_unusable_out_dir_fails_before_any_compute(images, tmp_path, capsys, where):
    root, _, _, vocab = images
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = afile / "sub" if where == "inside_a_file" else Path("/proc/skgradnorm-test")
    argv = ["cluster", str(root), "-k", "2", "--vocabulary", str(vocab)]
    argv += [*_tiny_args(out, tmp_path / "cache"), "--pretrained", str(tmp_path / "absent.pt")]
    # the weights do not exist either: the folder is checked first, before any loading
    err = _expect_error(argv, capsys)
    assert str(out) in err and "absent.pt" not in err
