"""Shared test set-up: no downloads, CPU only, few threads, and shared fixtures.

The tiny open_clip model (random weights, saved to a local file) is built by the helpers
in ``_clip_fixtures.py``; its fixtures are defined here, once, for every test module.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download anything

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


def unit(A):
    """The rows of ``A`` scaled to unit L2 norm."""
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def random_unit_rows(seed, n, d, dtype=np.float64):
    """``n`` random unit vectors of dimension ``d`` (``seed``: an int or a numpy Generator)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return unit(rng.normal(size=(n, d))).astype(dtype)


def has_unit_rows(X, atol=1e-5) -> bool:
    return bool(np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=atol))


def benchmark_module(name: str):
    """Run ``benchmarks/<name>.py`` as module ``name`` (in ``sys.modules`` meanwhile, as its
    dataclasses and pickles need); yields it and removes it afterwards. For module-scoped
    fixtures of the tests of a benchmark script."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def small_heads_world():
    """``(world, make)``: a 300-image, 3-class planted world whose neighbours share their
    class, and ``make(**params)``, a seeded ``MutualDistillationClusterer`` for it with
    fast settings (10 neighbours, 10 epochs) that ``params`` override."""
    from skgradnorm import GradNormNounSelector, MutualDistillationClusterer
    from skgradnorm.datasets import make_planted_world

    world = make_planted_world(
        n_samples=300, n_classes=3, n_subclasses=1, n_features=32, random_state=0
    )
    selector = GradNormNounSelector(world.noun_embeddings, n_centers=9, random_state=0)
    fast = dict(n_neighbors=10, n_epochs=10, batch_size=100, device="cpu", random_state=0)
    return world, lambda **params: MutualDistillationClusterer(
        3, selector=selector, **{**fast, **params}
    )


def random_noun_bank(X, n_nouns=20, seed=0):
    """A deterministic random noun bank matching X's dimension (a callable noun_embeddings).

    Module-level so that estimators holding it can be pickled and cloned.
    """
    return np.random.default_rng(seed).normal(size=(n_nouns, X.shape[1]))


@pytest.fixture(scope="session")
def planted_world():
    """The default planted world (600 images, 5 classes) with a fixed seed."""
    from skgradnorm.datasets import make_planted_world

    return make_planted_world(random_state=0)


@pytest.fixture
def tiny_weights():
    """Path of the tiny model's random weights, saved once per process."""
    from _clip_fixtures import tiny_weights_file

    return tiny_weights_file()


@pytest.fixture
def tiny_encoder(tmp_path):
    """A tiny CLIPEncoder on the CPU with its noun cache in a temporary folder."""
    from _clip_fixtures import make_tiny_encoder

    return make_tiny_encoder(cache_dir=tmp_path / "cache")


@pytest.fixture(scope="session")
def reference_model():
    """The tiny model loaded by open_clip itself (model, preprocess, tokenizer)."""
    from _clip_fixtures import load_reference_model

    return load_reference_model()


class KilledRun(Exception):
    """Raised by :func:`prompt_calls` to simulate a run killed while embedding nouns."""


@pytest.fixture
def prompt_calls(monkeypatch):
    """Record what the noun path sends to the text tower, one entry per call.

    ``state["calls"]`` counts the calls (one or two per computed cache chunk),
    ``state["prompts"]`` lists the prompts of each call; set ``state["fail_after"] = n`` to
    raise :class:`KilledRun` from the call after the n-th. It wraps
    ``skgradnorm._clip._nouns.encode_prompts``, the one function the noun path calls the
    text tower through.
    """
    from skgradnorm._clip import _nouns

    state = {"calls": 0, "prompts": [], "fail_after": None}
    real = _nouns.encode_prompts

    def recording(bundle, texts, **kwargs):
        if state["fail_after"] is not None and state["calls"] >= state["fail_after"]:
            raise KilledRun("simulated kill")
        state["calls"] += 1
        state["prompts"].append(list(texts))
        return real(bundle, texts, **kwargs)

    monkeypatch.setattr(_nouns, "encode_prompts", recording)
    return state
