"""The command line: ``python -m skgradnorm demo``."""

import re
import subprocess
import sys

from skgradnorm._cli import main


def test_demo_reports_gradnorm_beating_image_only(capsys):
    assert main(["demo", "--n-samples", "300", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    acc = {m[0].strip(): float(m[1]) for m in re.findall(r"^\s+(.+?)\s+ACC (\d\.\d+)", out, flags=re.M)}
    assert set(acc) == {
        "image-only spherical k-means",
        "language-assisted, all nouns (no filter)",
        "language-assisted, GradNorm nouns",
    }
    assert acc["language-assisted, GradNorm nouns"] > acc["image-only spherical k-means"]
    assert "GradNorm kept" in out


def test_module_entry_point_shows_help():
    proc = subprocess.run([sys.executable, "-m", "skgradnorm", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "demo" in proc.stdout
