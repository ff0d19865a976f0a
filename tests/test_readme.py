"""The README's Python examples run as written (so the README stays true).

Blocks fenced as ``python`` run here. A block fenced as ``py`` is an excerpt of code that
runs elsewhere, and the README says where (the ImageNet-scale pipeline, run by
``benchmarks/bench_pipeline.py``).
"""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace = {}
    for block in blocks:  # later blocks build on earlier ones, as a reader would run them
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert float(out[0]) >= 0.9  # the Pipeline example's ACC, shown as 0.95 in the README
    assert namespace["search"].best_score_ >= 0.9
