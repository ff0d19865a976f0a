"""The report and the output files: summaries, charts, cluster pages and safe writing."""

import csv
import html
import itertools
import json
import os
import re
import sys

import numpy as np
import pytest
from sklearn.metrics.cluster import contingency_matrix

from skgradnorm import GradNormNounSelector, LanguageAssistedClusterer
from skgradnorm._cli._demo import swatch_thumbnail
from skgradnorm._reporting import _report_data
from skgradnorm._reporting._formats import display_text, spreadsheet_safe
from skgradnorm._reporting._out_dir import OUTPUT_FILES, check_output_dir, existing_outputs
from skgradnorm._reporting._outputs import write_outputs
from skgradnorm._reporting._report import cluster_page_name, render_report_html, summarize_clusters
from skgradnorm._reporting._report_data import class_table, collection_map
from skgradnorm._utils._safe_files import TMP_SUFFIX
from skgradnorm.datasets import make_planted_world
from skgradnorm.exceptions import OutputFolderError
from skgradnorm.metrics import clustering_accuracy_score

DATA_IMG = re.compile(r'<img src="data:image/(png|jpeg);base64,[A-Za-z0-9+/=]+"')
DATA_URI = re.compile(r"data:[^\"'\s)]*")
FIGURE = re.compile(r'<figure title="([^"]*)">')
POSIX_BYTES_NAMES = sys.platform.startswith("linux")  # macOS and Windows refuse them


def _fit(world, k, vocabulary=None):
    selector = GradNormNounSelector(
        world.noun_embeddings,
        vocabulary=world.vocabulary if vocabulary is None else vocabulary,
        n_centers=3 * k,
        random_state=0,
    )
    return LanguageAssistedClusterer(k, selector=selector, n_init=3, random_state=0).fit(world.data)


@pytest.fixture(scope="module")
def world():
    return make_planted_world(n_samples=90, n_classes=3, random_state=0)


@pytest.fixture(scope="module")
def fitted(world):
    return _fit(world, 3)


def _swatch(world):
    def thumbnail(i):
        return swatch_thumbnail(int(world.target[i]) / 3, shape=int(world.subclass[i])), ""

    return thumbnail


def _ids(world):
    return [f"img_{i:03d}.png" for i in range(len(world.target))]


def _write(out, world, clusterer, **kwargs):
    kwargs.setdefault("thumbnail", _swatch(world))
    return write_outputs(out, _ids(world), clusterer, world.data, **kwargs)


def _read_csv(path):
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.reader(f))


def _outside_data_uris(page):
    return DATA_URI.sub("", page)


def _snapshot(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- summaries


def test_summarize_clusters_nouns_follow_the_mean_text():
    w = make_planted_world(n_samples=200, n_classes=4, random_state=0)
    laic = _fit(w, 4)
    clusters = summarize_clusters(laic, w.data, n_nouns=3, n_examples=4, return_members=True)
    assert sum(c["size"] for c in clusters) == len(w.data)
    for c in clusters:
        members = np.flatnonzero(laic.labels_ == c["cluster"])
        majority = np.bincount(w.target[members]).argmax()
        # The describing nouns are positive nouns of the cluster's majority class.
        assert all(n.startswith(w.target_names[majority] + " ") for n in c["nouns"])
        assert set(c["examples"]) <= set(members) and len(c["examples"]) == 4
        assert sorted(c["members"]) == members.tolist()
        assert c["members"][:4] == c["examples"]


def test_summarize_clusters_definitions_follow_the_nouns(world, fitted):
    definitions = [f"sense {i} of {name}" for i, name in enumerate(world.vocabulary)]
    clusters = summarize_clusters(fitted, world.data, noun_definitions=definitions)
    kept = set(fitted.selector_.selected_indices_.tolist())
    for c in clusters:
        assert len(c["noun_definitions"]) == len(c["nouns"])
        for noun, definition in zip(c["nouns"], c["noun_definitions"], strict=True):
            row = int(definition.split()[1])
            assert row in kept and world.vocabulary[row] == noun
    with pytest.raises(ValueError, match="one definition per row"):
        summarize_clusters(fitted, world.data, noun_definitions=definitions[:2])


def test_class_table_matches_a_brute_force_matching():
    rng = np.random.default_rng(0)
    for trial in range(5):
        n_classes, k = 3 + trial % 2, 4
        y = rng.choice([f"c{j}" for j in range(n_classes)], size=60)
        labels = rng.integers(0, k - 1, size=60)  # cluster k-1 stays empty
        t = class_table(y, labels, k)
        assert t["classes"] == sorted(set(y.tolist()))
        full = np.zeros((len(t["classes"]), k), dtype=int)
        full[:, : labels.max() + 1] = contingency_matrix(y, labels)
        np.testing.assert_array_equal(t["counts"], full)
        assert sorted(t["cluster_order"]) == list(range(k))
        best = max(
            sum(full[i, p[i]] for i in range(len(t["classes"])))
            for p in itertools.permutations(range(k), len(t["classes"]))
        )
        assert sum(full[i, c] for c, i in t["matched"].items()) == best
        assert best / 60 == pytest.approx(clustering_accuracy_score(y, labels))
        # The matched clusters come first, in the order of their classes.
        head = t["cluster_order"][: len(t["matched"])]
        assert [t["matched"][c] for c in head] == sorted(t["matched"].values())


def test_collection_map_pca_is_the_top_two_components(monkeypatch):
    X = np.random.default_rng(1).normal(size=(80, 6)) * [5, 3, 1, 1, 1, 1]
    rows, xy, used = collection_map(X, method="pca")
    assert used == "pca" and rows.tolist() == list(range(80))
    U, S, _ = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(np.abs(xy), np.abs(U[:, :2] * S[:2]), atol=1e-8)
    rows, xy, _ = collection_map(X, max_points=25, random_state=3)
    assert rows.shape == (25,) and np.all(np.diff(rows) > 0) and xy.shape == (25, 2)
    monkeypatch.setattr(_report_data, "TSNE_AUTO_MAX", 79)  # "auto": PCA above the limit
    assert collection_map(X, method="auto")[2] == "pca"
    with pytest.raises(ValueError, match="map method"):
        collection_map(X, method="umap")


# --------------------------------------------------------------------------- rendering


def test_render_report_escapes_text():
    uri = swatch_thumbnail(0.3, shape=2, pattern=1)
    odd = os.fsdecode(b"caf\xe9.png") if POSIX_BYTES_NAMES else "caf\udce9.png"
    clusters = [
        {
            "cluster": 0,
            "size": 3,
            "nouns": ["<script>alert(1)</script>", "r&d"],
            "noun_definitions": ['a "quoted" <b>', ""],
            "thumbnails": [(uri, 'cap"tion<', "a/<b>.png"), (uri, "", odd)],
        },
        {"cluster": 1, "size": 0, "nouns": [], "thumbnails": []},
    ]
    page = render_report_html(clusters, title="<T>", meta_lines=["x < y"], metrics={"ACC": 0.5})
    page.encode("utf-8")  # valid text, whatever the file names
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "r&amp;d" in page and "cap&quot;tion&lt;" in page and "a/&lt;b&gt;.png" in page
    assert 'title="a &quot;quoted&quot; &lt;b&gt;"' in page
    assert "caf\\xe9.png" in page
    assert "<title>&lt;T&gt;</title>" in page and "x &lt; y" in page and "0.500" in page
    assert "and 1 more" in page and "empty cluster" in page
    assert len(DATA_IMG.findall(page)) == 2
    with pytest.raises(ValueError, match="data:image/"):
        render_report_html([{**clusters[0], "thumbnails": [("file:///x.png", "", "")]}])


def test_cluster_page_names():
    assert cluster_page_name(7, 12) == "cluster-007.html"
    assert cluster_page_name(7, 12, page=2) == "cluster-007-2.html"
    assert cluster_page_name(42, 2000) == "cluster-0042.html"


# --------------------------------------------------------------------------- write_outputs


def test_every_member_is_on_its_cluster_pages(tmp_path, world, fitted):
    out = tmp_path / "out"
    result = _write(
        out, world, fitted, true_labels=np.asarray(world.target_names)[world.target], page_size=7
    )
    assert {p.name for p in out.iterdir()} == set(OUTPUT_FILES)
    main = (out / "report.html").read_text(encoding="utf-8")
    ids = _ids(world)
    seen = []
    for c in result["clusters"]:
        k = c["cluster"]
        names = [cluster_page_name(k, 3, j) for j in range(1, -(-c["size"] // 7) + 1)]
        assert f'href="clusters/{names[0]}"' in main
        on_pages = []
        for name in names:
            page = (out / "clusters" / name).read_text(encoding="utf-8")
            shown = [html.unescape(t) for t in FIGURE.findall(page)]
            assert 1 <= len(shown) <= 7 and len(DATA_IMG.findall(page)) == len(shown)
            assert all(f'href="{other}"' in page for other in names if other != name)
            assert 'href="../report.html"' in page and "<script" not in page
            assert "http" not in _outside_data_uris(page).lower()
            on_pages += shown
        members = np.flatnonzero(fitted.labels_ == k)
        assert sorted(on_pages) == sorted(ids[i] for i in members)
        assert on_pages[: len(c["examples"])] == [ids[i] for i in c["examples"]]
        seen += on_pages
    assert sorted(seen) == sorted(ids)
    assert len(list((out / "clusters").iterdir())) == len(result["files"]["clusters"])
    # The main page: a preview of each cluster, the charts, the confusion matrix.
    assert len(DATA_IMG.findall(main)) == sum(min(12, c["size"]) for c in result["clusters"])
    assert main.count("<circle") == len(ids) and 'class="chart sizes"' in main
    assert 'class="confusion"' in main and main.count('class="mix"') == 3
    assert "http" not in _outside_data_uris(main).lower() and "<script" not in main


def test_labels_give_the_confusion_matrix(tmp_path, world, fitted):
    truth = np.asarray(world.target_names)[world.target]
    result = _write(tmp_path, world, fitted, true_labels=truth)
    m = json.loads((tmp_path / "metrics.json").read_text())
    table = m["confusion_matrix"]
    assert table["classes"] == sorted(world.target_names)
    np.testing.assert_array_equal(table["counts"], contingency_matrix(truth, fitted.labels_))
    main = (tmp_path / "report.html").read_text()
    for c in result["clusters"]:  # the largest share of each cluster's class mix is named
        counts = np.asarray(table["counts"])[:, c["cluster"]]
        top = table["classes"][int(counts.argmax())]
        assert f"{html.escape(top)} {counts.max() / counts.sum():.0%}" in main
    # Without labels: no metrics, no matrix, but the sizes and the map.
    _write(tmp_path, world, fitted)
    main = (tmp_path / "report.html").read_text()
    assert not (tmp_path / "metrics.json").exists() and 'class="confusion"' not in main
    assert 'class="chart sizes"' in main and 'class="chart map"' in main


@pytest.mark.slow  # t-SNE: a few seconds
def test_map_is_capped_and_can_use_tsne(tmp_path, world, fitted):
    _write(tmp_path, world, fitted, max_map_points=40, map_method="tsne")
    main = (tmp_path / "report.html").read_text()
    assert main.count("<circle") == 40 and "40 of 90 images" in main and "t-SNE" in main


def test_rerun_with_fewer_clusters_removes_stale_pages(tmp_path, world, fitted):
    _write(tmp_path, world, fitted, true_labels=world.target)
    assert len(list((tmp_path / "clusters").glob("cluster-*.html"))) == 3
    (tmp_path / "clusters" / "notes.txt").write_text("mine")
    _write(tmp_path, world, _fit(world, 2))
    pages = sorted(p.name for p in (tmp_path / "clusters").iterdir())
    assert pages == ["cluster-000.html", "cluster-001.html", "notes.txt"]
    assert not (tmp_path / "metrics.json").exists()


def test_noun_definitions(tmp_path, world, fitted):
    _write(tmp_path, world, fitted)
    assert _read_csv(tmp_path / "selected_nouns.csv")[0] == ["noun", "center", "score"]
    definitions = [f"what {name} means" for name in world.vocabulary]
    with pytest.raises(ValueError, match="one definition"):
        _write(tmp_path, world, fitted, noun_definitions=definitions + ["extra"])
    result = _write(tmp_path, world, fitted, noun_definitions=definitions)
    rows = _read_csv(tmp_path / "selected_nouns.csv")
    assert rows[0] == ["noun", "center", "score", "definition"]
    assert all(r[3] == f"what {r[0]} means" for r in rows[1:])
    main = (tmp_path / "report.html").read_text()
    doc = json.loads((tmp_path / "clusters.json").read_text())
    for c, d in zip(result["clusters"], doc["clusters"], strict=True):
        assert d["noun_definitions"] == [f"what {n} means" for n in c["nouns"]]
        for noun in c["nouns"]:
            assert f'title="what {html.escape(noun)} means">{html.escape(noun)}</span>' in main
            assert f"<li><b>{html.escape(noun)}</b>: what {html.escape(noun)} means</li>" in main


def test_a_crash_while_writing_leaves_the_old_results_whole(tmp_path, world, fitted):
    _write(tmp_path, world, fitted, true_labels=world.target)
    before = _snapshot(tmp_path)

    def killed(i):
        raise KeyboardInterrupt  # a kill or Ctrl-C half-way through the report

    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path, world, _fit(world, 2), thumbnail=killed)
    assert _snapshot(tmp_path) == before  # nothing truncated, nothing half-new
    assert not list(tmp_path.rglob(f"*{TMP_SUFFIX}"))
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        _write(fresh, world, fitted, thumbnail=killed)
    assert existing_outputs(fresh) == [] and list(fresh.iterdir()) == []


def test_leftover_temporary_files_are_cleaned(tmp_path, world, fitted):
    (tmp_path / "clusters").mkdir()
    left = [tmp_path / f".report.html.ab12{TMP_SUFFIX}", tmp_path / "clusters" / f".x{TMP_SUFFIX}"]
    for path in left:
        path.write_bytes(b"half")
    _write(tmp_path, world, fitted)
    assert not any(p.exists() for p in left)


def test_threads_make_the_same_files(tmp_path, world, fitted):
    _write(tmp_path / "one", world, fitted, true_labels=world.target, page_size=20)
    _write(tmp_path / "two", world, fitted, true_labels=world.target, page_size=20, n_jobs=2)
    assert _snapshot(tmp_path / "one") == _snapshot(tmp_path / "two")


def test_a_failing_thumbnail_gets_a_placeholder(tmp_path, world, fitted):
    ids = _ids(world)
    with pytest.warns(UserWarning, match=r"90 thumbnail\(s\) could not be made"):
        write_outputs(tmp_path, ids, fitted, world.data, image_root=tmp_path / "no-images")
    main = (tmp_path / "report.html").read_text()
    assert len(DATA_IMG.findall(main)) == sum(
        min(12, int(np.sum(fitted.labels_ == k))) for k in range(3)
    )


@pytest.mark.skipif(not POSIX_BYTES_NAMES, reason="needs a file system that takes any bytes")
def test_file_names_that_are_not_utf8(tmp_path, world, fitted):
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    ids = []
    for i in range(len(world.target)):
        name = os.fsdecode(b"caf\xe9-%03d.png" % i if i % 2 else b"plain-%03d.png" % i)
        Image.new("RGB", (8, 8), (i, 0, 0)).save(root / name)
        ids.append(name)
    out = tmp_path / "out"
    write_outputs(out, ids, fitted, world.data, image_root=root)
    raw = (out / "assignments.csv").read_bytes()
    assert b"caf\xe9-001.png" in raw  # the name's own bytes, not mangled
    assert [r[0] for r in _read_csv(out / "assignments.csv")[1:]] == ids
    doc = json.loads((out / "clusters.json").read_text(encoding="utf-8"))
    assert {p for c in doc["clusters"] for p in c["examples"]} <= set(ids)
    for page in [out / "report.html", *(out / "clusters").iterdir()]:
        text = page.read_text(encoding="utf-8")  # strict UTF-8
        assert "caf\\xe9-" in text
    assert display_text(ids[1]) == "caf\\xe9-001.png"


def test_csv_cells_are_spreadsheet_safe(tmp_path, world):
    starts = ("=", "+", "-", "@", "\t", "\r")
    vocabulary = [starts[i % 6] + name for i, name in enumerate(world.vocabulary)]
    clusterer = _fit(world, 3, vocabulary=vocabulary)
    ids = [starts[i % 6] + f"SUM(A{i}).png" if i % 7 else f"ok{i}=.png" for i in range(90)]
    ids[1] = 'a\rb\nc,d"e.png'  # line ends, a comma and a quote inside a name
    write_outputs(tmp_path, ids, clusterer, world.data, thumbnail=_swatch(world))
    rows = _read_csv(tmp_path / "assignments.csv")[1:]
    assert [r[0] for r in rows] == [spreadsheet_safe(p) for p in ids]
    assert all(r[0].startswith("'") != (i % 7 == 0 or i == 1) for i, r in enumerate(rows))
    nouns = _read_csv(tmp_path / "selected_nouns.csv")[1:]
    assert nouns and all(r[0].startswith("'") and r[0][1:] in vocabulary for r in nouns)
    assert all(float(r[2]) == float(r[2]) for r in nouns)  # numbers untouched
    # clusters.json is not a spreadsheet: names stay as they are there.
    doc = json.loads((tmp_path / "clusters.json").read_text())
    assert {p for c in doc["clusters"] for p in c["examples"]} <= set(ids)


# --------------------------------------------------------------------------- links, folders


@pytest.mark.parametrize(
    "name", ["report.html", "assignments.csv", "metrics.json", "clusters", "clusters/page"]
)
def test_planted_links_are_refused(tmp_path, world, fitted, name):
    out = tmp_path / "out"
    _write(out, world, fitted)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    link = out / ("clusters/" + cluster_page_name(0, 3) if name == "clusters/page" else name)
    if link.is_dir():
        for p in link.iterdir():
            p.unlink()
        link.rmdir()
    elif link.exists():
        link.unlink()
    link.symlink_to(outside if name == "clusters" else outside / "victim.txt")
    for overwrite in (False, True):
        with pytest.raises(OutputFolderError, match="symbolic link") as exc:
            check_output_dir(out, overwrite=overwrite)
        assert str(link) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(OutputFolderError, match="symbolic link"):
        _write(out, world, fitted, true_labels=world.target)
    assert (outside / "victim.txt").read_text() == "precious"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


def test_check_output_dir_accepts_a_new_nested_folder_and_leaves_no_trace(tmp_path):
    check_output_dir(tmp_path / "a" / "b" / "out", overwrite=False)
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "here"
    existing.mkdir()
    check_output_dir(existing, overwrite=False)
    assert list(existing.iterdir()) == []


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda t: t / "afile", "exists and is not a folder"),
        (lambda t: t / "afile" / "sub" / "out", "'afile' is a file|is a file, not a folder"),
        (lambda t: "/proc/skgradnorm-x", "cannot be created"),
        (lambda t: "/proc", "not writable"),
    ],
)
def test_check_output_dir_refuses_unusable_folders(tmp_path, make, fragment):
    (tmp_path / "afile").write_text("x")
    if not os.path.isdir("/proc") and str(make(tmp_path)).startswith("/proc"):
        pytest.skip("no /proc here")
    with pytest.raises(OutputFolderError, match=fragment) as exc:
        check_output_dir(make(tmp_path), overwrite=True)
    assert "\n" not in str(exc.value)


def test_check_output_dir_refuses_a_dangling_link_and_ignores_old_probes(tmp_path):
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    with pytest.raises(OutputFolderError, match="symbolic link to something missing"):
        check_output_dir(tmp_path / "gone" / "out", overwrite=True)
    (tmp_path / f".probe{TMP_SUFFIX}").write_text("left by a kill")
    check_output_dir(tmp_path, overwrite=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_check_output_dir_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputFolderError, match="not writable"):
            check_output_dir(folder, overwrite=True)
    finally:
        folder.chmod(0o700)


def test_check_output_dir_existing_results(tmp_path):
    (tmp_path / "clusters.json").write_text('{"source": "demo"}')
    with pytest.raises(OutputFolderError, match=r"already holds results \(clusters.json\)"):
        check_output_dir(tmp_path, overwrite=False)
    check_output_dir(tmp_path, overwrite=True)
    check_output_dir(tmp_path, overwrite=False, own_source="demo")
    (tmp_path / "report.html").mkdir()  # something that is not a file where one goes
    with pytest.raises(OutputFolderError, match="not a regular file"):
        check_output_dir(tmp_path, overwrite=True)


def test_thumbnail_of_a_16_bit_image_is_not_clipped_white(tmp_path):
    import base64
    import io

    from PIL import Image

    from skgradnorm._reporting._thumbnails import image_thumbnail

    gradient = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = tmp_path / "gradient16.png"
    Image.fromarray(gradient).save(path)
    uri = image_thumbnail(path, size=64)
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert 100 < pixels.mean() < 155  # a mid-grey average, not 99% white
