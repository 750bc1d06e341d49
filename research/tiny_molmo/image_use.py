"""Image use by task: how much a training run's checkpoint leans on the image, per data source, long before its
generated answers show it.

For each validation source of the run's config, the answer tokens' loss (teacher-forced, as the trainer's
validation loss) with each example's own image and with the image of the next example in the batch. The gap is
what the image is worth to the model on that task; on the plateau where answers come from the language prior it
is about zero. Run it on a training run as it goes (it reads the newest complete checkpoint, or `--step`):

    python -m research.tiny_molmo.image_use ~/.cache/molmo/runs/tiny-ground --examples 64
    python -m research.tiny_molmo.image_use RUN --kinds count point qa   # each source split by annotation kind
    python -m research.tiny_molmo.image_use RUN --positions 4     # + per answer token: argmax hits, own / next

`--positions N` adds, per source, how often the model's most likely token is the answer's own at each of the
first N answer tokens (teacher-forced, own image / next image): which part of an answer the image decides (a
clock's hour digit or its minute digits, a count's number).

A point scene's answers mix kinds (a point list, "There are N", a bare count) whose image dependence differs;
`--kinds` scores each kind on its own (a source without a kind skips that row).

`--coordinates` adds, for the point answers' coordinate values (the text inside `x="…"`, `y1="…"`, …), the mean
loss in nats of a whole value and of its first token (own / next image): whether the image decides where a point
goes (a uniform value in 0.0-100.0 costs ~6.9 nats) or only how many points there are.

Swapping images needs the same image layout across a batch, so the run must train at one crop (`max_crops 1`:
every image is the global view plus one crop).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from tokenizers import Tokenizer
from torch.distributed.checkpoint import DefaultLoadPlanner

from molmo.train.batches import Collator, DataError, MixtureDataset
from molmo.train.checkpointing import complete_checkpoints
from molmo.train.config import TrainConfig, from_dict
from molmo.train.setup import build_model_and_processor
from molmo.model.loss import token_loss
from molmo.train.trainer import MODEL_KEYS, _autocast

SWAPPED = ("images", "image_masks")  # what moves to the next example; the token layout stays
COORDINATE_NAMES = ("Ġx", "Ġy")  # a point attribute's name token; an index ("1", "2", ...) may follow it


def checkpoint_at(run: Path, step: int | None = None) -> Path:
    """The run's complete checkpoint at `step`, or its newest."""
    found = complete_checkpoints(run / "checkpoints")
    if step is not None:
        found = [p for p in found if int(p.name[5:]) == step]
    if not found:
        raise SystemExit(f"no complete checkpoint{'' if step is None else f' at step {step}'} in {run}/checkpoints")
    return found[-1]


def load_checkpoint_weights(model: torch.nn.Module, checkpoint: Path) -> None:
    state = model.state_dict()
    dcp.load({"model": state}, checkpoint_id=str(checkpoint), planner=DefaultLoadPlanner(allow_partial_load=True))
    model.load_state_dict(state)


def run_config(run: Path) -> TrainConfig:
    return from_dict(TrainConfig, json.loads((run / "config.json").read_text()))


def model_at_step(cfg: TrainConfig, run: Path, step: int | None = None) -> tuple:
    """(model, processor, tokenizer folder, checkpoint) of the run's checkpoint at `step` (or its newest)."""
    checkpoint = checkpoint_at(run, step)
    model, processor, tokenizer_dir = build_model_and_processor(cfg)
    load_checkpoint_weights(model, checkpoint)
    return model, processor, tokenizer_dir, checkpoint


@torch.no_grad()
def answer_logits(model, batch: dict[str, torch.Tensor], autocast) -> torch.Tensor:
    with autocast:
        return model(**{k: batch[k] for k in MODEL_KEYS if k in batch}, response_mask=batch["loss_masks"] > 0).logits


def answer_loss(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> float:
    """The answer tokens' mean loss, as the trainer's validation loss computes it."""
    ce, _, weight = token_loss(logits, batch["labels"], batch["loss_masks"], 0.0)
    return float(ce) / max(float(weight), 1e-9)


def position_hits(logits: torch.Tensor, batch: dict[str, torch.Tensor], positions: int) -> torch.Tensor:
    """(positions, 2): for the k-th answer token of each row, how many rows' argmax is the label, and how many
    rows have a k-th answer token (rows hold one answer each: `annotations_per_example` 1)."""
    answer = batch["loss_masks"] > 0
    index = answer.long().cumsum(1) - 1  # each answer token's place in its row's answer
    hit = (logits.argmax(-1) == batch["labels"]) & answer
    return torch.tensor([[float((hit & (index == k)).sum()), float((answer & (index == k)).sum())]
                         for k in range(positions)])


def coordinate_spans(tokens: list[str]) -> list[list[int]]:
    """The indices of each coordinate value's tokens in a point answer's tokens: what lies between `="` and `"`
    after `x`, `y`, `x1`, `y1`, ... (the label in `alt="…"` is not a coordinate)."""
    spans, naming, value = [], False, None
    for i, t in enumerate(tokens):
        if value is not None:
            if t.startswith('"'):
                if value:
                    spans.append(value)
                value = None
            else:
                value.append(i)
        elif t in COORDINATE_NAMES:
            naming = True
        elif naming and t == '="':
            value, naming = [], False
        elif not (naming and t.isdigit()):
            naming = False
    return spans


def coordinate_nats(logits: torch.Tensor, batch: dict[str, torch.Tensor], token_text) -> torch.Tensor:
    """(3,): the summed loss of every coordinate value in the batch's answers, of their first tokens, and how
    many values there are; `token_text` maps a token id to its text."""
    safe = batch["labels"].clamp(0, logits.shape[-1] - 1)  # outside the answers labels may be ignore ids or image ids
    nll = -torch.log_softmax(logits.float(), -1).gather(-1, safe[..., None])[..., 0]
    total = torch.zeros(3)
    for row in range(nll.shape[0]):
        where = (batch["loss_masks"][row] > 0).nonzero().flatten().tolist()
        for span in coordinate_spans([token_text(int(batch["labels"][row, i])) for i in where]):
            at = [where[k] for k in span]
            total += torch.tensor([float(nll[row, at].sum()), float(nll[row, at[0]]), 1.0])
    return total


def image_use(run: Path, examples: int = 64, batch: int = 16, step: int | None = None,
              kinds: tuple[str, ...] = (), positions: int = 0, coordinates: bool = False) -> dict:
    cfg = run_config(run)
    if (cfg.data.max_crops or 0) != 1:
        raise SystemExit(f"{run} trains at max_crops {cfg.data.max_crops}; swapping images needs max_crops 1")
    model, processor, tokenizer_dir, checkpoint = model_at_step(cfg, run, step)
    model.eval()
    token_text = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json")).id_to_token
    autocast, collator = _autocast(cfg, torch.device("cpu")), Collator(cfg.data.sequence_length)
    scores = {"step": int(checkpoint.name[5:])}
    # a run without validation sources (the grounding check's) is scored on its training sources' first items
    sources = cfg.data.validation or cfg.data.sources
    if kinds:
        sources = [dataclasses.replace(s, name=f"{s.name}/{k}", annotation_kinds=(k,)) for s in sources for k in kinds]
    for source in sources:
        data = MixtureDataset((source,), cfg.data, processor, cfg.data.seed)
        keys = data.sampler.iterate(0)
        own = swapped = 0.0
        hits = torch.zeros(2, positions, 2)  # own / next image, answer position, (hits, rows)
        nats = torch.zeros(2, 3)  # own / next image: (value nats, first-token nats, values)
        try:
            for _ in range(examples // batch):
                b = collator([data[next(keys)] for _ in range(batch)])
                moved = {**b, **{k: b[k].roll(1, 0) for k in SWAPPED if k in b}}
                own_logits, moved_logits = answer_logits(model, b, autocast), answer_logits(model, moved, autocast)
                own += answer_loss(own_logits, b)
                swapped += answer_loss(moved_logits, moved)
                if positions:
                    hits += torch.stack([position_hits(own_logits, b, positions),
                                         position_hits(moved_logits, moved, positions)])
                if coordinates:
                    nats += torch.stack([coordinate_nats(own_logits, b, token_text),
                                         coordinate_nats(moved_logits, moved, token_text)])
        except DataError:  # --kinds: this source has no annotation of the kind
            continue
        n = examples // batch
        scores[source.name] = {"own_image": round(own / n, 4), "next_image": round(swapped / n, 4),
                               "gap": round((swapped - own) / n, 4)}
        if positions:
            rate = hits[..., 0] / hits[..., 1].clamp(min=1)
            scores[source.name]["hits_own"] = [round(float(v), 3) for v in rate[0]]
            scores[source.name]["hits_next"] = [round(float(v), 3) for v in rate[1]]
        if coordinates and nats[0, 2]:
            per_value = nats[:, :2] / nats[:, 2:]
            scores[source.name]["coordinates"] = {
                "values": int(nats[0, 2]), "nats_own": round(float(per_value[0, 0]), 3),
                "nats_next": round(float(per_value[1, 0]), 3), "first_token_own": round(float(per_value[0, 1]), 3),
                "first_token_next": round(float(per_value[1, 1]), 3)}
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a training run folder (config.json, checkpoints/)")
    p.add_argument("--examples", type=int, default=64, help="validation examples per source (default: 64)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--step", type=int, default=None, help="this checkpoint instead of the newest")
    p.add_argument("--kinds", nargs="+", default=(), help="score each source per annotation kind (count point qa)")
    p.add_argument("--positions", type=int, default=0, help="argmax hits at the first N answer tokens (default 0)")
    p.add_argument("--coordinates", action="store_true",
                   help="+ the point answers' loss per coordinate value and its first token, own / next image")
    p.add_argument("--log", type=Path, default=None, help="append the scores as one JSON line here")
    args = p.parse_args()
    scores = image_use(args.run, args.examples, args.batch, args.step, tuple(args.kinds), args.positions,
                        args.coordinates)
    print(f"step {scores['step']}")
    print(f"{'source':28s} {'own image':>10s} {'next image':>11s} {'gap':>7s}"
          + ("  argmax hits per answer token, own/next image" if args.positions else ""))
    for name, s in scores.items():
        if name != "step":
            hits = "".join(f"  {a:.2f}/{b:.2f}" for a, b in zip(s.get("hits_own", ()), s.get("hits_next", ())))
            print(f"{name:28s} {s['own_image']:10.4f} {s['next_image']:11.4f} {s['gap']:7.4f}{hits}")
            if "coordinates" in s:
                c = s["coordinates"]
                print(f"{'':28s} {c['values']} coordinate values, nats a value own/next image "
                      f"{c['nats_own']:.3f}/{c['nats_next']:.3f}, its first token "
                      f"{c['first_token_own']:.3f}/{c['first_token_next']:.3f}")
    if args.log:
        with open(args.log, "a") as f:
            f.write(json.dumps(scores) + "\n")


if __name__ == "__main__":
    main()
