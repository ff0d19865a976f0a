"""The cost of a noun bank is estimated from a timed batch and said before the work starts."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from _clip_fixtures import TINY_NAME, make_tiny_encoder, register_tiny_config, tiny_weights_file

from skgradnorm._clip import _noun_cache, _nouns
from skgradnorm._clip._encoder import CLIPEncoder
from skgradnorm._clip._nouns import (
    COST_SAMPLE_NOUNS,
    encode_noun_chunk,
    format_duration,
    sample_positions,
)
from skgradnorm.exceptions import SlowNounBankWarning

NOUNS = [f"thing{i}" for i in range(100)]  # more than twice the timed sample
TEMPLATES = ["a photo of a {}.", "art of the {}."]  # two are enough, and fast


def _encoder(**params):
    # Batches of 8 prompts: the timed sample is its smallest, COST_SAMPLE_NOUNS nouns.
    params.setdefault("text_batch_size", 8)
    return make_tiny_encoder(templates=TEMPLATES, **params)


def _n_prompts(prompt_calls):
    return sum(len(batch) for batch in prompt_calls["prompts"])


@pytest.mark.slow
def test_estimate_then_encode_embeds_each_noun_once(tmp_path, prompt_calls):
    enc = _encoder(cache_dir=tmp_path)
    n_templates = len(TEMPLATES)
    seconds = enc.estimate_noun_seconds(NOUNS)
    assert seconds > 0.0
    assert _n_prompts(prompt_calls) == COST_SAMPLE_NOUNS * n_templates  # only the sample
    assert seconds == pytest.approx(enc._noun_sample.seconds_per_noun * len(NOUNS))
    out = enc.encode_nouns(NOUNS)
    assert _n_prompts(prompt_calls) == len(NOUNS) * n_templates  # the sample was reused
    # The same bits as an encoder that never estimated, and the plain ensemble.
    plain = _encoder(cache_dir=False)
    np.testing.assert_array_equal(out, plain.encode_nouns(NOUNS))
    reference = encode_noun_chunk(plain.load_model()._model_bundle, NOUNS, TEMPLATES, batch_size=7)
    np.testing.assert_allclose(out, reference, atol=1e-5)
    # Cached now: nothing left to estimate, nothing embedded.
    prompt_calls["prompts"].clear()
    assert enc.estimate_noun_seconds(NOUNS) == 0.0
    assert _n_prompts(prompt_calls) == 0


@pytest.mark.slow
def test_estimate_counts_only_the_uncached_nouns(tmp_path, monkeypatch):
    monkeypatch.setattr(_noun_cache, "DEFAULT_CHUNK_SIZE", 40)  # chunks of 40, 40, 20
    enc = _encoder(cache_dir=tmp_path)
    enc.encode_nouns(NOUNS)
    (folder,) = (tmp_path / "noun_embeddings").iterdir()
    (folder / "chunk_00001.json").unlink()
    seconds = enc.estimate_noun_seconds(NOUNS)
    assert seconds / enc._noun_sample.seconds_per_noun == pytest.approx(40)
    assert enc._noun_sample.key[2] == tuple(NOUNS[40:80])  # the sample: all of chunk 1
    assert _encoder(cache_dir=False).estimate_noun_seconds(NOUNS[:3]) > 0.0


@pytest.mark.slow
def test_slow_bank_warns_when_verbose_with_the_ways_out(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(_nouns, "SLOW_NOUN_BANK_SECONDS", 0.0)  # any bank is "slow"
    caplog.set_level(logging.INFO, logger="skgradnorm")
    with pytest.warns(SlowNounBankWarning) as record:
        _encoder(cache_dir=tmp_path, verbose=True).encode_nouns(NOUNS)
    message = str(record[0].message)
    assert "100 nouns" in message and "GPU" in message and "smaller vocabulary" in message
    assert str(tmp_path) in message and "instant" in message
    assert any("will take about" in r.getMessage() for r in caplog.records)

    # verbose=False: logged, not warned.
    caplog.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowNounBankWarning)
        _encoder(cache_dir=False).encode_nouns(NOUNS)
    assert any("enable the cache" in r.getMessage() for r in caplog.records)

    # After estimate_noun_seconds (the caller was told), encode_nouns does not warn again.
    enc = _encoder(cache_dir=False, verbose=True)
    enc.estimate_noun_seconds(NOUNS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowNounBankWarning)
        enc.encode_nouns(NOUNS)
    with pytest.warns(SlowNounBankWarning):  # a second, new job is announced again
        enc.encode_nouns(NOUNS)


def test_short_work_is_not_estimated(prompt_calls, monkeypatch):
    monkeypatch.setattr(_nouns, "SLOW_NOUN_BANK_SECONDS", 0.0)
    enc = _encoder(cache_dir=False, verbose=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowNounBankWarning)
        enc.encode_nouns(NOUNS[: 2 * COST_SAMPLE_NOUNS])
    assert not hasattr(enc, "_noun_sample")


def test_quiet_by_default_progress_when_verbose(capsys):
    register_tiny_config()
    enc = CLIPEncoder(
        TINY_NAME, pretrained=tiny_weights_file(), device="cpu", cache_dir=False, templates=["{}"]
    )
    assert enc.get_params()["verbose"] is False  # quiet, as scikit-learn's estimators
    enc.encode_nouns(["dog", "cat", "cow"])
    assert capsys.readouterr().err == ""
    enc.set_params(verbose=True).encode_nouns(["dog", "cat", "cow"])
    assert "Embedding nouns" in capsys.readouterr().err


def test_sample_is_spread_over_the_chunk():
    positions = sample_positions(4096)
    assert len(positions) == COST_SAMPLE_NOUNS and positions[0] == 0 and positions[-1] == 4095
    assert np.all(np.diff(positions) > 80)
    np.testing.assert_array_equal(sample_positions(30), np.arange(30))


@pytest.mark.parametrize(
    "seconds, text",
    [(0.2, "1 s"), (40.4, "40 s"), (600, "10 min"), (16723, "4 h 39 min"), (7200, "2 h")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_the_sample_fills_full_batches():
    assert _nouns.cost_sample_size(7, 256) == 293  # 8 batches of 256 prompts
    assert _nouns.cost_sample_size(2, 8) == COST_SAMPLE_NOUNS  # never fewer than 48
    assert len(sample_positions(4096, 293)) == 293


@pytest.mark.slow
def test_duplicated_nouns_one_sample_one_message(prompt_calls, monkeypatch):
    """The paper's bank repeats nouns: the estimate and the embedding share one sample, and
    the caller who asked for the estimate gets no second message."""
    monkeypatch.setattr(_nouns, "SLOW_NOUN_BANK_SECONDS", 0.0)
    enc = _encoder(cache_dir=False, verbose=True)
    doubled = NOUNS + NOUNS[::-1]
    enc.estimate_noun_seconds(doubled)
    assert _n_prompts(prompt_calls) == COST_SAMPLE_NOUNS * len(TEMPLATES)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowNounBankWarning)
        out = enc.encode_nouns(doubled)
    assert _n_prompts(prompt_calls) == len(NOUNS) * len(TEMPLATES)  # each distinct noun once
    np.testing.assert_array_equal(out[: len(NOUNS)], out[len(NOUNS) :][::-1])
    # Without an estimate first, one warning, pointing at the caller's line (this file).
    with pytest.warns(SlowNounBankWarning) as record:
        _encoder(cache_dir=False, verbose=True).encode_nouns(doubled)
    assert len(record) == 1 and record[0].filename == __file__


def test_the_bar_starts_with_the_timed_sample_done(monkeypatch):
    """The sample embedded before the bar starts is shown as done, not as a burst."""
    events = []

    class Bar:
        def __init__(self, **kw):
            events.append(("initial", kw["initial"]))

        def update(self, k):
            events.append(("update", k))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(_nouns, "progress_bar", lambda **kw: Bar(**kw))
    nouns = [f"n{i}" for i in range(25)]

    def compute(chunk, progress):
        first = chunk[0] == "n0"
        if first:
            progress(4)  # the first chunk's timed sample, reported first
        for _ in range(len(chunk) - 4 * first):
            progress(1)
        return np.ones((len(chunk), 3), np.float32)

    out = _nouns.embed_nouns_in_chunks(nouns, compute, chunk_size=10, on_start=lambda n, c: 4)
    assert out.shape == (25, 3)
    assert events[0] == ("initial", 4)
    updates = [k for _, k in events[1:] if k]
    assert set(updates) == {1} and 4 + len(updates) == 25  # no burst of 4, nothing twice
