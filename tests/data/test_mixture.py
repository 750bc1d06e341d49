"""Mixture rates (sqrt sizes inside groups, fixed sizes) and the deterministic sampler's frequencies."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from molmo.data.mixture import MixtureSampler, mixture, preset_mixture

# Sizes the spec used for its illustrative rates (recipe-spec §2.3).
SPEC_SIZES = {
    "pixmo_ask_model_anything": 71000, "pixmo_cap_qa": 163000, "pixmo_pointing_explanations": 78000,
    "coco_2014_vqa_multi": 82800, "text_vqa": 34602, "okvqa": 9009, "chart_qa_weighted": 28299, "doc_qa": 39463,
    "info_qa": 23946, "ai2_diagram_v2_mix_transparent": 15000, "a_okvqa_mc": 17056, "a_okvqa_da": 17056,
    "android_control": 74000, "science_qa_img": 6218, "tabwmp_da": 23059, "st_qa": 25000, "tally_qa": 133000,
    "pixmo_docs_charts": 116814, "pixmo_docs_tables": 46518, "pixmo_docs_other": 71300, "pixmo_docs_diagrams": 16551,
    "pixmo_points": 150000, "pixmo_count": 36916, "pixmo_points_high_freq": 75000, "pixmo_points_counting": 150000,
    "pixmo_points_high_freq_counting": 75000, "pixmo_count_counting": 36916,
}


def test_released_mixture_group_rates_and_spec_estimates():
    mix = preset_mixture("3.2-synthetic")
    rates = mix.rates(SPEC_SIZES)
    assert sum(rates.values()) == pytest.approx(1.0)
    assert mix.group_rates(SPEC_SIZES) == pytest.approx({"demo": 0.15, "aux": 0.50, "pointing": 0.35})
    # Illustrative percentages printed in the spec (rounded to 0.1 %).
    for name, pct in {"pixmo_cap": 2.9, "pixmo_cap_qa": 5.2, "coco_2014_vqa_multi": 3.8, "tally_qa": 4.8,
                      "pixmo_docs_charts": 4.5, "dv_qa": 1.3, "plot_qa": 1.9, "pixmo_count": 3.9}.items():
        assert 100 * rates[name] == pytest.approx(pct, abs=0.06), name
    assert len(rates) == 31 and "clocks" not in rates


def test_fixed_sizes_override_dataset_sizes_and_sqrt_within_group():
    mix = mixture("m", {"a": (0.6, ["x", ("y", 400)]), "b": (0.4, ["z"])})
    rates = mix.rates({"x": 100, "y": 10**6, "z": 7})
    assert rates["x"] == pytest.approx(0.6 * 10 / 30)
    assert rates["y"] == pytest.approx(0.6 * 20 / 30)
    assert rates["z"] == pytest.approx(0.4)


def test_missing_sizes_error_or_drop_and_renormalise():
    mix = mixture("m", {"a": (0.5, ["x", "y"]), "b": (0.5, ["z"])})
    with pytest.raises(ValueError, match="no size for dataset 'y'"):
        mix.rates({"x": 4, "z": 9})
    rates = mix.rates({"x": 4, "z": 9}, drop_missing=True)
    assert rates == pytest.approx({"x": 0.5, "z": 0.5})
    only_a = mix.rates({"x": 4}, drop_missing=True)
    assert only_a == pytest.approx({"x": 1.0})
    with pytest.raises(ValueError, match="more than once"):
        mixture("dup", {"a": (1.0, ["x"]), "b": (1.0, ["x"])})
    with pytest.raises(ValueError, match="unknown mixture"):
        preset_mixture("nope")


def test_sampler_frequencies_match_rates():
    mix = preset_mixture("synthetic")
    sizes = {"captions": 400, "docs": 900, "clocks": 100, "points": 50}
    sampler = MixtureSampler(mix, sizes, seed=3)
    n = 20000
    counts = Counter(name for name, _, _ in sampler.indices(n))
    for name, rate in sampler.rates.items():
        sd = math.sqrt(rate * (1 - rate) / n)
        assert abs(counts[name] / n - rate) < 5 * sd, name
    assert sampler.rates["docs"] == pytest.approx(0.5 * 30 / 40)


def test_sampler_is_deterministic_resumable_and_walks_permutations():
    mix = mixture("m", {"g": (1.0, ["a", "b"])})
    sizes = {"a": 5, "b": 3}
    s1, s2 = MixtureSampler(mix, sizes, seed=11), MixtureSampler(mix, sizes, seed=11)
    stream = s1.indices(200)
    assert stream == s2.indices(200)
    assert s1.indices(50, start=150) == stream[150:]
    assert MixtureSampler(mix, sizes, seed=12).indices(200) != stream
    # Each epoch of a dataset visits every example exactly once; epochs use different orders.
    a = [(i, e) for n, i, e in stream if n == "a"]
    by_epoch = {}
    for i, e in a:
        by_epoch.setdefault(e, []).append(i)
    full = [v for v in by_epoch.values() if len(v) == 5]
    assert len(full) >= 3 and all(sorted(v) == list(range(5)) for v in full)
    assert len({tuple(v) for v in full}) > 1


def test_sampler_needs_real_sizes_for_fixed_size_members():
    mix = mixture("m", {"g": (1.0, [("a", 100), "b"])})
    with pytest.raises(ValueError, match="real number of examples"):
        MixtureSampler(mix, {"b": 3})


def test_every_epoch_is_a_fresh_permutation_without_repeats():
    sampler = MixtureSampler({"a": 0.7, "b": 0.3}, {"a": 13, "b": 4}, seed=95818, chunk=64)
    stream = sampler.indices(2000)
    for name, size in sampler.sizes.items():
        draws = [(i, e) for n, i, e in stream if n == name]
        epochs = {}
        for i, e in draws:
            epochs.setdefault(e, []).append(i)
        complete = [v for e, v in sorted(epochs.items()) if e < max(epochs)]
        assert len(complete) >= 3
        assert all(sorted(v) == list(range(size)) for v in complete), name  # no repeat within an epoch
        assert len({tuple(v) for v in complete}) > 1  # reshuffled every epoch
        last = epochs[max(epochs)]
        assert len(set(last)) == len(last)  # the unfinished epoch has no repeat either


def test_resume_mid_epoch_gives_the_same_next_items_and_state_is_checked():
    sizes = {"a": 50, "b": 7}
    sampler = MixtureSampler({"a": 0.5, "b": 0.5}, sizes, seed=50189, chunk=32)
    stream = sampler.indices(300)
    for start in (1, 31, 32, 33, 97, 250):  # inside and at the edges of the drawing chunks
        resumed = MixtureSampler({"a": 0.5, "b": 0.5}, sizes, seed=50189, chunk=32)
        position = resumed.check_state(sampler.state(start))
        assert resumed.indices(300 - start, start=position) == stream[start:]
    with pytest.raises(ValueError, match="sizes: checkpoint"):
        MixtureSampler({"a": 0.5, "b": 0.5}, {"a": 51, "b": 7}, seed=50189).check_state(sampler.state(10))
    with pytest.raises(ValueError, match="seed: checkpoint"):
        MixtureSampler({"a": 0.5, "b": 0.5}, sizes, seed=1).check_state(sampler.state(10))
