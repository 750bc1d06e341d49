"""Dataset mixtures and their deterministic sampler (recipe-spec §2.3).

A mixture is named groups of datasets with fixed group rates; inside a group each dataset's rate is
proportional to sqrt(size), where size is the dataset's number of examples unless the member fixes it
(`("pixmo_cap", 50000)`). The sampler draws a dataset for every slot with `RandomState(seed).choice(p=rates)`
and walks each dataset through a permutation reshuffled every epoch of that dataset (`seed + epoch * 1771`).
Training draws its examples from this sampler (molmo.train.batches) and keeps its state in the checkpoint.

    mix = preset_mixture("3.2-synthetic")
    rates = mix.rates(sizes)                                   # {"pixmo_points": 0.071, ...}
    sampler = MixtureSampler(mix, sizes, seed=50189)
    for dataset, index, epoch in sampler: ...                  # endless
    first = sampler.indices(1024)                              # [(dataset, index, epoch), ...]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np

EPOCH_SEED_STRIDE = 1771  # released code: per-dataset permutation seed = seed + epoch * 1771
SFT_DATA_SEED = 50189  # the released launch scripts' data seeds
PRETRAIN_DATA_SEED = 95818


@dataclass(frozen=True)
class MixtureMember:
    name: str
    size: int | None = None  # fixed size used for the rate instead of len(dataset)


@dataclass(frozen=True)
class MixtureGroup:
    name: str
    rate: float
    members: tuple[MixtureMember, ...]


@dataclass(frozen=True)
class Mixture:
    name: str
    groups: tuple[MixtureGroup, ...]

    def __post_init__(self) -> None:
        names = [m.name for g in self.groups for m in g.members]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"mixture {self.name!r} lists dataset(s) {dupes} more than once")
        for g in self.groups:
            if g.rate < 0 or not g.members:
                raise ValueError(f"mixture {self.name!r}: group {g.name!r} needs a rate >= 0 and at least one member")

    @property
    def datasets(self) -> list[str]:
        return [m.name for g in self.groups for m in g.members]

    def rates(self, sizes: Mapping[str, int] | None = None, drop_missing: bool = False) -> dict[str, float]:
        """Sampling probability of every dataset (sums to 1). `sizes` gives len(dataset) for members without
        a fixed size; with drop_missing=True, members without a size (or of size 0) are left out and the
        remaining rates renormalised, otherwise a missing size is an error."""
        sizes = dict(sizes or {})
        raw: dict[str, float] = {}
        for g in self.groups:
            weights = {}
            for m in g.members:
                size = m.size if m.size is not None else sizes.get(m.name)
                if size is None or size <= 0:
                    if drop_missing:
                        continue
                    raise ValueError(f"mixture {self.name!r}: no size for dataset {m.name!r} "
                                     "(give sizes[name] or use drop_missing=True)")
                weights[m.name] = math.sqrt(size)
            total = sum(weights.values())
            for name, w in weights.items():
                raw[name] = g.rate * w / total
        total = sum(raw.values())
        if total <= 0:
            raise ValueError(f"mixture {self.name!r} has no dataset with a size and a positive rate")
        return {name: r / total for name, r in raw.items()}

    def group_rates(self, sizes: Mapping[str, int] | None = None, drop_missing: bool = False) -> dict[str, float]:
        rates = self.rates(sizes, drop_missing)
        return {g.name: sum(rates.get(m.name, 0.0) for m in g.members) for g in self.groups}


def mixture(name: str, groups: Mapping[str, tuple[float, list]]) -> Mixture:
    """Build from {group: (rate, [name or (name, fixed_size), ...])}."""
    return Mixture(name, tuple(
        MixtureGroup(g, float(rate), tuple(MixtureMember(*m) if isinstance(m, (tuple, list)) else MixtureMember(m)
                                         for m in members))
        for g, (rate, members) in groups.items()))


PRESETS: dict[str, Mixture] = {
    # The released SFT mixture (spec §2.3); clocks is commented out of it upstream.
    "3.2-synthetic": mixture("3.2-synthetic", {
        "demo": (0.15, ["pixmo_ask_model_anything", ("pixmo_cap", 50000), "pixmo_cap_qa",
                        "pixmo_pointing_explanations"]),
        "aux": (0.50, ["coco_2014_vqa_multi", "text_vqa", "okvqa", "chart_qa_weighted", "doc_qa", "info_qa",
                       "ai2_diagram_v2_mix_transparent", "a_okvqa_mc", "a_okvqa_da", "android_control",
                       "science_qa_img", "tabwmp_da", "st_qa", "tally_qa", "pixmo_docs_charts",
                       "pixmo_docs_tables", "pixmo_docs_other", "pixmo_docs_diagrams", ("dv_qa", 10000),
                       ("figure_qa", 10000), ("plot_qa", 20000)]),
        "pointing": (0.35, ["pixmo_points", "pixmo_count", "pixmo_points_high_freq", "pixmo_points_counting",
                            "pixmo_points_high_freq_counting", "pixmo_count_counting"]),
    }),
    # Our synthetic stand-in, built from molmo.data.generators (kinds points, clocks, docs, captions); the
    # group rates mirror the released demo / aux / pointing split.
    "synthetic": mixture("synthetic", {
        "demo": (0.15, ["captions"]),
        "aux": (0.50, ["docs", "clocks"]),
        "pointing": (0.35, ["points"]),
    }),
}


def preset_mixture(name: str) -> Mixture:
    if name not in PRESETS:
        raise ValueError(f"unknown mixture {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]


class MixtureSampler:
    """Deterministic stream of (dataset_name, example_index, epoch) for sampling rates and dataset sizes.

    Slot g of the stream draws its dataset with `RandomState(seed).choice(p=rates)` (in chunks); the k-th draw of
    a dataset of size n takes position k % n of that dataset's permutation for epoch k // n, seeded
    `seed + epoch * 1771`: every epoch visits each example exactly once, in a fresh order. Every draw depends only
    on (seed, rates, sizes, position), so `iterate(start)` resumes exactly at position `start`; `state(position)`
    is what a training checkpoint stores and `check_state` verifies on resume."""

    def __init__(self, mix: "Mixture | Mapping[str, float]", sizes: Mapping[str, int], seed: int = SFT_DATA_SEED,
                 drop_missing: bool = False, chunk: int = 4096):
        if isinstance(mix, Mixture):
            self.rates = mix.rates(sizes, drop_missing)
        else:
            total = float(sum(mix.values()))
            if total <= 0 or any(r < 0 for r in mix.values()):
                raise ValueError(f"sampling rates must be >= 0 and not all zero, got {dict(mix)}")
            self.rates = {n: float(r) / total for n, r in mix.items()}
        self.names = list(self.rates)
        missing = [n for n in self.names if not sizes.get(n)]
        if missing:
            raise ValueError(f"MixtureSampler needs the real number of examples of {missing} (fixed sizes only "
                             "set rates)")
        self.sizes = {n: int(sizes[n]) for n in self.names}
        self.seed = seed
        self.chunk = chunk
        self._p = np.array([self.rates[n] for n in self.names])
        self._perms: dict[str, tuple[int, np.ndarray]] = {}

    def permutation(self, name: str, epoch: int) -> np.ndarray:
        """This epoch's order of a dataset (the latest one kept per dataset: a stream's epochs only grow)."""
        cached = self._perms.get(name)
        if cached is None or cached[0] != epoch:
            order = np.random.RandomState(self.seed + epoch * EPOCH_SEED_STRIDE).permutation(self.sizes[name])
            cached = self._perms[name] = (epoch, order)
        return cached[1]

    def __iter__(self) -> Iterator[tuple[str, int, int]]:
        return self.iterate()

    def iterate(self, start: int = 0) -> Iterator[tuple[str, int, int]]:
        rng = np.random.RandomState(self.seed)
        seen = np.zeros(len(self.names), np.int64)  # examples drawn so far from each dataset
        position = 0
        while True:
            choices = rng.choice(len(self.names), size=self.chunk, p=self._p)
            if position + self.chunk <= start:  # skipping to a resume point: count draws, no Python loop
                seen += np.bincount(choices, minlength=len(self.names))
                position += self.chunk
                continue
            for choice in choices:
                name = self.names[choice]
                k = int(seen[choice])
                seen[choice] += 1
                if position >= start:
                    epoch, offset = divmod(k, self.sizes[name])
                    yield name, int(self.permutation(name, epoch)[offset]), epoch
                position += 1

    def indices(self, n: int, start: int = 0) -> list[tuple[str, int, int]]:
        it = self.iterate(start)
        return [next(it) for _ in range(n)]

    def state(self, position: int) -> dict:
        """What a checkpoint stores to resume the stream at `position`."""
        return {"position": int(position), "seed": self.seed, "sizes": dict(self.sizes),
                "rates": {n: round(r, 12) for n, r in self.rates.items()}}

    def check_state(self, saved: dict) -> int:
        """The position to resume at; raises ValueError naming what changed when the saved stream differs
        (another seed, or datasets of other sizes or rates: the resumed run would see other data)."""
        mine = self.state(saved.get("position", 0))
        changed = [k for k in ("seed", "sizes", "rates") if k in saved and saved[k] != mine[k]]
        if changed:
            detail = "; ".join(f"{k}: checkpoint {saved[k]} vs now {mine[k]}" for k in changed)
            raise ValueError(f"the data stream differs from the checkpoint's ({detail}); resuming would not "
                             "continue with the same examples")
        return int(saved.get("position", 0))


__all__ = ["Mixture", "MixtureGroup", "MixtureMember", "MixtureSampler", "PRESETS", "mixture", "preset_mixture"]
