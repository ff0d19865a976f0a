"""Every public name of every public module is on the API page (docs/api.rst)."""

import importlib
import re
from pathlib import Path

import pytest

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.rst"
PUBLIC_MODULES = [
    "skgradnorm",
    "skgradnorm.datasets",
    "skgradnorm.distributed",
    "skgradnorm.exceptions",
    "skgradnorm.metrics",
    "skgradnorm.model_selection",
    "skgradnorm.tuning",
    "skgradnorm.vocabulary",
]


def _documented_names() -> set[str]:
    text = API_PAGE.read_text(encoding="utf-8")
    listed = re.findall(r"^\s{3}([A-Za-z_][A-Za-z0-9_]*)\s*$", text, flags=re.M)
    data = re.findall(r"^\.\. autodata:: ([A-Za-z_][A-Za-z0-9_.]*)", text, flags=re.M)
    return set(listed) | {name.rsplit(".", 1)[-1] for name in data}


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_on_the_api_page(module_name):
    module = importlib.import_module(module_name)
    missing = sorted(set(module.__all__) - _documented_names())
    assert not missing, f"{module_name} exports {missing}, absent from docs/api.rst"
