"""The command line refuses bad inputs in one line (exit status 2), before the long steps,
and never leaves OUT_DIR half written (issue 19's list; see scripts/replay_bad_inputs.py).

Each test runs ``main`` in this process on a tiny open_clip model with random weights.
"""

import contextlib
import errno
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from _clip_fixtures import register_tiny_config, tiny_weights_file
from PIL import Image

from skgradnorm._cli import main
from skgradnorm._reporting._out_dir import output_folder_lock

VOCABULARY = "apple tomato grass leaf sky ocean jeans car dog cat house tree".split()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(image folder with 6 images in 2 sub-folders, vocabulary file, labels CSV)."""
    base = tmp_path_factory.mktemp("bad")
    root = base / "images"
    rng = np.random.default_rng(0)
    rel = []
    for sub in ("a", "b"):
        for j in range(3):
            path = root / sub / f"{j}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(path)
            rel.append(f"{sub}/{j}.png")
    vocab = base / "vocab.txt"
    vocab.write_text("\n".join(VOCABULARY) + "\n")
    labels = base / "labels.csv"
    labels.write_text("".join(f"{p},{p[0]}\n" for p in rel))
    return root, vocab, labels


def _argv(root, out, vocab, *extra, cache=None):
    register_tiny_config()
    argv = ["cluster", str(root), "-k", "2", "-o", str(out), "--vocabulary", str(vocab)]
    argv += ["--model", "skgradnorm-tiny", "--pretrained", tiny_weights_file()]
    argv += ["--device", "cpu", "--n-init", "2", "--n-centers", "3", "--quiet"]
    argv += ["--cache-dir", str(cache or Path(out).parent / "cache"), *extra]
    return argv


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _refused(argv, *fragments):
    """Exit status 2 with one ``error:`` line (argparse's errors come after its usage)."""
    code, _, err = _run(argv)
    assert code == 2, err
    assert "Traceback" not in err and len([x for x in err.splitlines() if "error:" in x]) == 1
    assert err.splitlines()[-1].startswith("skgradnorm cluster: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "content, fragment",
    [
        (
            "a/0.png,a\na/1.png,a\na/2.png,a\nb/0.png,b\nb/1.png,b\nb/2.png,b\nb/2.png,c\n",
            "two labels",
        ),
        ("a/0.png,a\x00x\n", "NUL byte"),
    ],
    ids=["two_labels_for_one_image", "nul_byte"],
)
def test_labels_refused(inputs, tmp_path, content, fragment):
    root, vocab, _ = inputs
    bad = tmp_path / "labels.csv"
    bad.write_text(content)
    _refused(_argv(root, tmp_path / "o", vocab, "--labels", str(bad)), fragment)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("special", ["fifo", "dev_zero", "folder"])
@pytest.mark.parametrize("option", ["--labels", "--vocabulary"])
def test_special_files_are_refused_before_reading(inputs, tmp_path, special, option):
    root, vocab, labels = inputs
    if special == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)  # reading it would wait for a writer forever
    elif special == "dev_zero":
        path = Path("/dev/zero")  # reading it would fill the memory
    else:
        path = tmp_path
    argv = _argv(root, tmp_path / "o", vocab if option == "--labels" else path)
    if option == "--labels":
        argv += ["--labels", str(path)]
    _refused(argv, "not a regular file")


def test_label_rows_that_are_odd_paths_are_ignored_and_a_bom_is_read(inputs, tmp_path):
    """Rows for ~nosuchuser/..., a link loop or a missing file are rows for other files."""
    root, vocab, labels = inputs
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    rows = labels.read_text() + "~nosuchuser/x.png,z\n" + f"{tmp_path / 'loop' / 'x.png'},z\n"
    odd = tmp_path / "labels.csv"
    odd.write_bytes(b"\xef\xbb\xbf" + rows.encode())  # a BOM, no header
    code, stdout, err = _run(_argv(root, tmp_path / "o", vocab, "--labels", str(odd)))
    assert code == 0, err
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["n_samples"] == 6 and metrics["n_classes"] == 2  # the BOM row read as a/0.png


def test_an_image_folder_with_a_link_loop_and_labels(inputs, tmp_path):
    root, vocab, labels = inputs
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in root.rglob("*.png"):
        target = folder / p.parent.name / p.name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(p.read_bytes())
    (folder / "a" / "back").symlink_to(folder, target_is_directory=True)  # a cycle
    (folder / "self.png").symlink_to(folder / "self.png")  # a file link to itself
    err = _refused(_argv(folder, tmp_path / "o", vocab, "--labels", str(labels)))
    assert "self.png" in err  # no label for it (the loop is not followed forever)


def test_an_unreadable_subfolder_is_reported(inputs, tmp_path, monkeypatch):
    """Images in a folder that cannot be listed are not skipped without a word."""
    root, vocab, _ = inputs
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(os.fspath(path)).name == "b":  # as if "b" were chmod 000 (the tests run as root)
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    _refused(_argv(root, tmp_path / "o", vocab), "cannot list 1 folder(s)", "'b'", "Permission")


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--device", "meta"], "--device 'meta'"),
        (["--seed", "-1"], "--seed: expected an integer from 0 to 4294967295"),
        (["--tune-grid", '{"temperature": [0.05]}'], "--tune-grid is the grid of --tune"),
        (["--tune", "--tune-grid", '{"temperature": [-1]}'], "is not a positive number"),
        (["--tune", "--tune-grid", '{"top_k": [true]}'], "is not a positive integer"),
        (
            ["--tune", "--tune-grid", '{"selector__p": [0.5]}'],
            "--tune-grid 'selector__p': 0.5 is not valid",
        ),
        (["--cache-dir", ""], "expected a path, got an empty string"),
        (["--cache-dir", " "], "expected a path, got an empty string"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v)[:40],
)
def test_options_refused_before_anything_runs(inputs, tmp_path, extra, fragment):
    root, vocab, _ = inputs
    err = _refused(_argv(root, tmp_path / "o", vocab, *extra), fragment)
    assert not (tmp_path / "o").exists() and not (tmp_path / "cache").exists(), err


def test_sic_dropping_every_noun_is_said_in_the_cli_words(inputs, tmp_path):
    root, _, _ = inputs
    one = tmp_path / "one.txt"
    one.write_text("dog\n")
    _refused(_argv(root, tmp_path / "o", one, "--strategy", "sic"), "--strategy sic", "single")
    same = tmp_path / "same.txt"  # random weights embed every noun much alike
    same.write_text("dog\ncat\n")
    err = _refused(_argv(root, tmp_path / "o2", same, "--strategy", "sic"), "drops every one")
    assert "uniqueness_threshold" not in err  # the command line's words, not the API's
    assert not (tmp_path / "o2" / "embeddings.npy").exists()  # before the images


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--n-samples", "1"], "--n-samples 1 is too few"),
        (["--n-classes", "1000", "--n-samples", "10"], "too few for --n-classes 1000"),
        (["--seed", "-5"], "--seed: expected an integer from 0"),
        (["--n-samples", "100000000000"], "GiB of memory"),
    ],
)
def test_demo_sizes_refused_up_front(tmp_path, argv, fragment):
    code, _, err = _run(["demo", "--out", str(tmp_path / "d"), *argv])
    assert code == 2 and fragment in err and "Traceback" not in err, err
    assert not (tmp_path / "d").exists()


# --------------------------------------------------------------------------- OUT_DIR


@pytest.mark.parametrize("name", ["embeddings.npy", "embeddings.json"])
def test_a_folder_where_the_embeddings_go_is_refused_first(inputs, tmp_path, name):
    root, vocab, _ = inputs
    (tmp_path / "o" / name).mkdir(parents=True)
    _refused(_argv(root, tmp_path / "o", vocab), name, "not a regular file")


def test_a_read_only_clusters_folder_is_refused_first(inputs, tmp_path, monkeypatch):
    root, vocab, _ = inputs
    pages = tmp_path / "o" / "clusters"
    pages.mkdir(parents=True)
    real_open = os.open

    def open_(path, flags, *args, **kwargs):  # as the kernel answers a non-root user
        if Path(os.fspath(path)).parent == pages and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    _refused(_argv(root, tmp_path / "o", vocab), "clusters", "not writable")


def test_a_run_killed_while_writing_does_not_block_the_rerun(inputs, tmp_path):
    root, vocab, _ = inputs
    out = tmp_path / "o"
    (out / "clusters").mkdir(parents=True)  # what kill -9 left: an empty clusters/
    (out / "clusters" / ".cluster-0.html.abc.skgradnorm-tmp").write_text("half")
    code, _, err = _run(_argv(root, out, vocab))
    assert code == 0, err
    assert not list(out.rglob("*.skgradnorm-tmp"))


def test_a_second_run_on_the_same_folder_is_refused(inputs, tmp_path):
    root, vocab, _ = inputs
    out = tmp_path / "o"
    with output_folder_lock(out):  # another run holds it
        _refused(_argv(root, out, vocab), "another skgradnorm run is writing into")
    assert not out.exists()  # the holder made the folder and left nothing in it
    assert _run(_argv(root, out, vocab))[0] == 0  # free again
    assert not (out / ".skgradnorm.lock").exists()
    _refused(_argv(root, out, vocab), "already holds results")  # no silent replacement


def test_a_full_disk_is_said_plainly_and_leaves_the_results(inputs, tmp_path, monkeypatch):
    from skgradnorm._utils import _safe_files

    root, vocab, _ = inputs
    out = tmp_path / "o"
    assert _run(_argv(root, out, vocab))[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real_add = _safe_files.StagedFiles.add

    def add(self, path, data):
        if Path(path).name == "report.html":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_add(self, path, data)

    monkeypatch.setattr(_safe_files.StagedFiles, "add", add)
    _refused(_argv(root, out, vocab, "--overwrite", "-k", "3"), "No space left on device")
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing replaced, nothing left behind


def test_a_name_the_terminal_cannot_show_is_printed_escaped(inputs, tmp_path, monkeypatch):
    root, vocab, _ = inputs
    out = Path(os.fsdecode(bytes(tmp_path) + b"/out-\xff"))  # not UTF-8
    raw = io.BytesIO()
    strict = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    monkeypatch.setattr("sys.stdout", strict)
    code = main(_argv(root, out, vocab))
    strict.flush()
    assert code == 0
    assert b"out-\\udcff" in raw.getvalue() and b"Report:" in raw.getvalue()


# --------------------------------------------------------------------------- records


def test_the_weights_of_a_local_dir_model_are_recorded(inputs, tmp_path):
    import torch
    from _clip_fixtures import TINY_CONFIG
    from safetensors.torch import save_file

    root, vocab, _ = inputs
    folder = tmp_path / "model"
    folder.mkdir()
    state = torch.load(tiny_weights_file(), weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "open_clip_model.safetensors")
    config = {"model_cfg": TINY_CONFIG, "preprocess_cfg": {}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    argv = _argv(root, tmp_path / "o", vocab)
    argv[argv.index("--model") + 1] = f"local-dir:{folder}"
    argv[argv.index("--pretrained") + 1] = "openai"  # ignored by a local-dir model
    code, _, err = _run(argv)
    assert code == 0, err
    document = json.loads((tmp_path / "o" / "clusters.json").read_text())
    assert document["pretrained"] == str(folder.resolve())
    assert "(openai)" not in (tmp_path / "o" / "report.html").read_text()


# --------------------------------------------------------------------------- embed folders


def _other_weights(tmp_path):
    """Weights of the tiny architecture that differ from tiny_weights_file()."""
    import torch

    state = torch.load(tiny_weights_file(), weights_only=True)
    path = tmp_path / "other_weights.pt"
    torch.save({k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}, path)
    return path


@pytest.mark.slow
def test_cluster_from_an_embed_folder_checks_the_model(inputs, tmp_path):
    pytest.importorskip("dask")
    root, vocab, _ = inputs
    argv = _argv(root, tmp_path / "unused", vocab)
    model = argv[argv.index("--model") : argv.index("--model") + 6]  # model, weights, device
    emb = tmp_path / "emb"
    code, _, err = _run(["embed", str(root), "-o", str(emb), *model, "--cache-dir", str(tmp_path)])
    assert code == 0, err
    other = _argv(None, tmp_path / "o", vocab, "--embeddings", str(emb))
    other[other.index("--pretrained") + 1] = str(_other_weights(tmp_path))
    other.remove("None")  # no IMAGE_DIR: the folder knows where its images are
    _refused(other, "another model")  # image embeddings of one model, nouns of another
    same = [a for a in other]
    same[same.index("--pretrained") + 1] = tiny_weights_file()
    assert _run(same)[0] == 0


def test_embed_with_a_missing_scheduler_file_fails_at_once(inputs, tmp_path):
    pytest.importorskip("distributed")
    root, _, _ = inputs
    code, _, err = _run(
        ["embed", str(root), "--out", str(tmp_path / "e"), "--scheduler", str(tmp_path / "s.json")]
    )
    assert code == 2 and "scheduler file" in err and "does not exist" in err, err


def test_an_unwritable_cache_folder_is_refused_first(inputs, tmp_path):
    root, vocab, _ = inputs
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = _argv(root, tmp_path / "o", vocab, "--cache-dir", str(afile / "cache"))
    _refused(argv, "--cache-dir", "cannot be written")
    assert not (tmp_path / "o").exists()
    argv = _argv(root, tmp_path / "o", vocab, "--cache-dir", str(afile))
    _refused(argv, "--cache-dir", "(it is a file, not a folder)")


def test_unreadable_weights_are_not_called_missing(inputs, tmp_path, monkeypatch):
    root, vocab, _ = inputs
    weights = tiny_weights_file()
    real_access = os.access
    monkeypatch.setattr(  # as for a non-root user and a chmod 000 file
        os, "access", lambda p, mode: False if os.fspath(p) == weights else real_access(p, mode)
    )
    err = _refused(_argv(root, tmp_path / "o", vocab), "cannot be read (permission denied)")
    assert "No such file" not in err


def test_an_unreadable_image_folder_is_not_called_empty(inputs, tmp_path, monkeypatch):
    root, vocab, _ = inputs
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(os.fspath(path)) == root:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    err = _refused(_argv(root, tmp_path / "o", vocab), "cannot list the image folder")
    assert "no images found" not in err
