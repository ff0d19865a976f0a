"""Tests of benchmarks/gpu_check.py: the one-run GPU check, exercised on the CPU.

CI has no GPU, so the whole script runs here with ``--device cpu --size tiny`` (the device
and the reference are then both the CPU: the comparisons are trivial, but every code path
runs and every section must be in the JSON). The selection checker and the report are also
tested on planted differences, so that a real disagreement is shown to fail.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import benchmark_module


@pytest.fixture(scope="module")
def gc():
    yield from benchmark_module("gpu_check")


def test_selection_checker_explains_near_ties_only(gc):
    # Centre 0: nouns 0..3, top 2 kept. On the "device", nouns 1 and 2 swap at the cut.
    s0 = np.array([0.1, 0.2, 0.2 * (1 + 1e-6), 0.9, 0.5, 0.6])
    a = np.array([0, 0, 0, 0, 1, 1])
    flipped = np.zeros(6, dtype=bool)
    sel_cpu, sel_near_tie = np.array([0, 1, 4]), np.array([0, 2, 4])
    check = gc._unexplained_selection_changes
    assert check(sel_cpu, sel_near_tie, s0, a, a, flipped, 1e-4) == (0, 2)
    # Noun 3 (score 0.9, far from the cut) replacing noun 1 is a real difference.
    assert check(sel_cpu, np.array([0, 3, 4]), s0, a, a, flipped, 1e-4) == (2, 2)
    # A noun that moved between centres (a flip the margin check vetted) explains its centres.
    a1 = a.copy()
    a1[5] = 0
    flipped = a != a1
    assert check(sel_cpu, np.array([0, 5, 4]), s0, a, a1, flipped, 1e-4)[0] == 0


def test_failed_check_and_error_are_reported(gc, tmp_path):
    run = gc.Run("cpu", "tiny", tmp_path, 0, ["--test"])

    def disagree(run, sec, p):
        sec.check("planted difference", 1.0, 1e-6)

    def broken(run, sec, p):
        sec.timing("before the error", 0.5, count=5, unit="things/s")
        raise RuntimeError("planted")

    try:
        gc.SECTIONS["_disagree"] = ("correctness", disagree)
        gc.SECTIONS["_broken"] = ("speed", broken)
        gc.SIZES["tiny"]["_disagree"] = gc.SIZES["tiny"]["_broken"] = {}
        gc.run_section(run, "_disagree")
        gc.run_section(run, "_broken")
    finally:
        for table in (gc.SECTIONS, gc.SIZES["tiny"]):
            table.pop("_disagree", None)
            table.pop("_broken", None)
        run.close()
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    assert doc["sections"]["_disagree"]["status"] == "failed"
    broken_doc = doc["sections"]["_broken"]
    assert broken_doc["status"] == "error" and "planted" in broken_doc["error"]
    assert broken_doc["timings"][0]["rate"] == 10.0  # what ran before the error is kept
    md = (tmp_path / "gpu_check.md").read_text()
    assert "**FAIL**" in md and "0 of 1 passed" in md and "RuntimeError: planted" in md


@pytest.mark.slow
def test_whole_check_runs_on_cpu(gc, tmp_path):
    doc = gc.main(["--device", "cpu", "--size", "tiny", "--out", str(tmp_path)])
    on_disk = json.loads((tmp_path / "gpu_check.json").read_text())
    assert on_disk["sections"].keys() == doc["sections"].keys() == gc.SECTIONS.keys()
    for name, section in on_disk["sections"].items():
        expected = "passed" if section["kind"] == "correctness" else "ok"
        assert section["status"] == expected, (name, section.get("error"))
        if section["kind"] == "correctness":
            limited = [c for c in section["checks"] if not c.get("info")]
            assert limited and all(c["passed"] for c in limited), name
        else:
            assert section["timings"] and all(t["seconds"] >= 0 for t in section["timings"])
    clip_checks = {c["name"] for c in on_disk["sections"]["clip"]["checks"]}
    for what in ("texts", "nouns", "images"):
        assert f"fp32 {what}: max abs diff to CPU" in clip_checks
        assert f"fp16 {what}: min cosine to CPU fp32" in clip_checks
    assert "fast tokenizer: prompts whose ids differ from open_clip's" in clip_checks
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| heads_speed | one epoch of the heads (cifar scale)" in md
    assert "whole paper bank, extrapolated" in md
