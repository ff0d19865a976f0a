"""What the command line prints while it works: one estimate, one bar per step, warnings
as one line (issue 19, "first contact")."""

import contextlib
import io
import warnings

import numpy as np
import pytest
from _clip_fixtures import register_tiny_config, tiny_weights_file
from PIL import Image

from skgradnorm._cli import main
from skgradnorm._cli._main import _one_line_warnings
from skgradnorm._clip import _nouns
from skgradnorm.exceptions import SlowNounBankWarning


class Terminal(io.StringIO):
    """A stderr that says it is a terminal (tqdm then draws its bars)."""

    def isatty(self):
        return True


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("out")
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(base / f"{i}.png")
    vocab = base / "vocab.txt"
    vocab.write_text("".join(f"noun{i}\n" for i in range(700)))  # above two timed samples
    return base, vocab


def _run(folder, vocab, out, *extra, stderr=None):
    register_tiny_config()
    argv = ["cluster", str(folder), "-k", "2", "-o", str(out), "--vocabulary", str(vocab)]
    argv += ["--model", "skgradnorm-tiny", "--pretrained", tiny_weights_file(), "--device", "cpu"]
    argv += ["--n-init", "2", "--n-centers", "3", "--cache-dir", str(out.parent / "c"), *extra]
    stdout, stderr = io.StringIO(), stderr or io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.slow
def test_one_estimate_one_bar_per_step_in_a_terminal(folder, tmp_path, monkeypatch):
    base, vocab = folder
    monkeypatch.setattr(_nouns, "SLOW_NOUN_BANK_SECONDS", 0.0)  # any bank would warn
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowNounBankWarning)  # ... but none may be raised
        code, _, err = _run(base, vocab, tmp_path / "o", stderr=Terminal())
    assert code == 0, err
    lines = err.split("\n")  # a bar redraws its own line with "\r"; a new line is a new bar
    step = [line for line in lines if line.startswith("[1/4]")]
    assert len(step) == 1 and "embedding 700 distinct nouns: about " in step[0], err
    assert " on cpu, " in step[0] and "None" not in err
    for bar in ("Embedding nouns", "Embedding images"):
        assert sum(bar in line for line in lines) == 1, err
        (line,) = [line for line in lines if bar in line]
        assert line.rsplit("\r", 1)[-1].lstrip().startswith(f"{bar}: 100%"), line[-200:]
    assert "Embedding texts" not in err and "warning" not in err.lower()


@pytest.mark.slow
def test_no_bars_when_not_a_terminal_nor_with_quiet(folder, tmp_path):
    base, vocab = folder
    code, _, err = _run(base, vocab, tmp_path / "o")  # a pipe, a file, a CI log
    assert code == 0 and "[1/4]" in err and "Embedding" not in err and "\r" not in err
    code, _, err = _run(base, vocab, tmp_path / "q", "--quiet", stderr=Terminal())
    assert code == 0 and err == ""


def test_library_warnings_are_one_line_in_the_cli_and_stay_warnings_in_python():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), _one_line_warnings("cluster"):
        warnings.warn(
            "the cache in /x cannot be used\n   (read-only);  embedded anyway",
            UserWarning,
            stacklevel=2,
        )
        warnings.warn("it will take long", SlowNounBankWarning, stacklevel=2)
    assert err.getvalue().splitlines() == [
        "skgradnorm cluster: warning: the cache in /x cannot be used (read-only); embedded anyway",
        "skgradnorm cluster: warning (SlowNounBankWarning): it will take long",
    ]
    with pytest.warns(UserWarning, match="still a warning"):  # Python's own display again
        warnings.warn("still a warning", UserWarning, stacklevel=2)
