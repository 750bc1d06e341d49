"""Grounding check: can this model and pipeline learn, in a few CPU minutes, an answer that needs the image?

It draws images with 0-4 red circles on white ("How many red circles are there?"), fine-tunes a copy of the
checkpoint on them with the `tiny-sft` settings, and scores exact match on unseen images next to the blind
baseline (the same fine-tuned model given a blank image) and the most frequent answer. A change that stops a
model from reading images (mis-scaled image tokens, image features put at the wrong positions, a masking bug)
shows here in minutes instead of after a two-hour run; a pass says the plateau of a real run is about its data
and steps, not the plumbing.

    python -m research.tiny_molmo.grounding_check --init runs/tiny-pretrain/model          # 150 steps, ~3 min on 2 CPUs
    python -m research.tiny_molmo.grounding_check --init runs/tiny-pretrain/model --steps 20 --out runs/gc
    python -m research.tiny_molmo.grounding_check --init runs/tiny-pretrain/model --colours red blue green \
        --steps 300 --train-images 2400 --out runs/gc-binding   # count only the asked colour (binding)
    python -m research.tiny_molmo.grounding_check --init runs/tiny-pretrain/model --colours red blue green \
        --batch 32 --max-crops 1 --steps 1000 --train-images 32000 --restate-steps 1000 --out runs/gc-restate
    python -m research.tiny_molmo.grounding_check --init runs/tiny-pretrain/model --colours red blue green \
        --batch 32 --max-crops 1 --steps 1000 --train-images 32000 --restate-steps 600 --out runs/gc-transfer
    python -m research.tiny_molmo.grounding_check --init runs/tiny-pretrain/model --scenes easy \
        --batch 32 --max-crops 1 --steps 400 --train-images 12800 --out runs/gc-scenes  # the generator's scenes
    python -m research.tiny_molmo.grounding_check --init runs/tiny-pretrain/model --scenes easy --scene-question target \
        --batch 32 --max-crops 1 --steps 400 --train-images 12800 --out runs/gc-target  # "How many red stars ...?"

With several colours every question names one of them, so the count needs the question's colour word bound to
the image: the step from "count the blobs" to "count the red triangles" that every generator question takes.
`--restate-steps N` answers "red 3" for the first N steps (the count right after the word it belongs to), then
"3" for the rest, from the restated phase's weights; the scores are on the last phase's answers.
`--connector-lr` replaces `tiny-sft`'s connector rate (1e-5; at the earlier 2e-3 the image tokens lose
per-colour amounts, as `python -m research.tiny_molmo.token_probe` shows); `--vit-lr` trains the ViT, which
`tiny-sft` freezes.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

QUESTION = "How many red circles are there?"
SCENE_QUESTIONS = ("colour", "target", "total")


def _question_row(index: int, question: str, word: str, count: int, restate: bool) -> dict:
    """One own-data row about image `index`.png; `restate` answers "red 3" (`word`, then the count) so the
    count follows the word it belongs to."""
    return {"image": f"{index}.png", "question": question, "answer": f"{word} {count}" if restate else str(count),
            "metric": "exact"}


def _write_rows(root: Path, rows: list[dict]) -> Path:
    path = root / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def draw_circles(rng: np.random.Generator, colours: tuple[str, ...], size: int = 224, radius: int = 15,
                 max_count: int = 4) -> tuple[Image.Image, list[int]]:
    """A white image with 0..max_count non-overlapping circles of each colour, and each colour's count (a crowded
    image keeps the circles that fit)."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    counts = [int(rng.integers(0, max_count + 1)) for _ in colours]
    centres: list[tuple[int, int]] = []
    for j, colour in enumerate(colours):
        placed, tries = 0, 0
        while placed < counts[j] and tries < 1000:
            tries += 1
            x, y = (int(v) for v in rng.integers(radius + 5, size - radius - 5, 2))
            if all((x - a) ** 2 + (y - b) ** 2 > (2.6 * radius) ** 2 for a, b in centres):
                centres.append((x, y))
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
                placed += 1
        counts[j] = placed
    return img, counts


def write_circle_counting(root: Path, n: int, seed: int, size: int = 224, radius: int = 15,
                          max_count: int = 4, colours: tuple[str, ...] = ("red",), restate: bool = False) -> Path:
    """n images of `draw_circles` and one counting question each about one colour (own-data JSONL). With several
    colours the answer needs the question's colour word bound to the matching image features, not just "count
    the blobs". `restate` answers "red 3", so the count follows the colour word."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        img, counts = draw_circles(rng, colours, size, radius, max_count)
        asked = int(rng.integers(len(colours))) if len(colours) > 1 else 0  # one colour: the same draws as before
        img.save(root / f"{i}.png")
        rows.append(_question_row(i, QUESTION.replace("red", colours[asked]), colours[asked], counts[asked], restate))
    return _write_rows(root, rows)


def write_scene_counting(root: Path, n: int, seed: int, difficulty: str = "easy", restate: bool = False,
                         question: str = "colour") -> Path:
    """n point scenes of the `points` generator, each with one counting question: `colour` asks "How many
    <colour> shapes are there?" about one of its colours (one in five about a colour it lacks, answer 0);
    `target` asks about the scene's main group ("How many red stars are there?", 0-10, beside a few
    distractors); `total` asks "How many shapes are there?" (no binding: counting alone)."""
    from molmo.data.generators import generate_one
    from molmo.data.generators.scenes import COLOURS, PLURAL

    if question not in SCENE_QUESTIONS:
        raise ValueError(f"unknown scene question {question!r}; expected one of {SCENE_QUESTIONS}")
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        item = generate_one("points", 5000 + seed, i, difficulty=difficulty)
        objects = item.scene["objects"]
        if question == "total":
            label = word = "shapes"
            count = len(objects)
        elif question == "target":
            t = item.scene["target"]
            label = word = f"{t['colour']} {PLURAL[t['shape']]}"
            count = sum(o["colour"] == t["colour"] and o["shape"] == t["shape"] for o in objects)
        else:
            counts = Counter(o["colour"] for o in objects)
            absent = sorted(set(COLOURS) - set(counts))
            colour = str(rng.choice(absent if absent and (not counts or rng.random() < 0.2) else sorted(counts)))
            label, count, word = f"{colour} shapes", counts[colour], colour
        item.image.save(root / f"{i}.png")
        rows.append(_question_row(i, f"How many {label} are there?", word, count, restate))
    return _write_rows(root, rows)


def _fine_tune(init: str, train_file: Path, steps: int, out_dir: Path, batch: int, max_crops: int,
               connector_lr: float | None, vit_lr: float | None = None, col_tokens: bool = True) -> Path:
    """`tiny-sft` settings (optionally another connector learning rate, the ViT trained at `vit_lr` instead
    of frozen, or image rows without their closing <im_col>) on one own-data file; returns the final model
    directory, whose preprocessor_config.json the evaluation then follows."""
    from molmo.train.config import DataSource
    from molmo.train.tiny_presets import tiny_sft
    from molmo.train.trainer import train

    base = tiny_sft()
    optim = base.optim
    if connector_lr is not None:
        optim = dataclasses.replace(optim, connector=dataclasses.replace(optim.connector, lr=connector_lr))
    if vit_lr is not None:
        optim = dataclasses.replace(optim, vit=dataclasses.replace(optim.vit, lr=vit_lr), freeze_vit=False)
    cfg = dataclasses.replace(
        base, init=init, steps=steps, global_batch=batch, micro_batch=batch, out_dir=str(out_dir), optim=optim,
        preprocessor={**base.preprocessor, "use_col_tokens": col_tokens},
        eval_every=0, save_every=min(steps, 200),  # a long check resumes when run again
        data=dataclasses.replace(base.data, sources=(DataSource("circles", "owndata", path=str(train_file)),),
                                 validation=(), max_crops=max_crops))
    return train(cfg)


def run_check(init: str, out: Path, steps: int = 150, train_images: int = 800, test_images: int = 100,
              batch: int = 8, max_crops: int = 4, colours: tuple[str, ...] = ("red",),
              restate_steps: int = 0, connector_lr: float | None = None, scenes: str | None = None,
              scene_question: str = "colour", vit_lr: float | None = None, col_tokens: bool = True) -> dict:
    """Fine-tune `init` on circle counting and return {"model", "blind", "majority"} exact-match scores.
    The first `restate_steps` steps train on restated answers ("red 3"), the rest on plain ones ("3").
    `connector_lr` replaces `tiny-sft`'s connector rate; `vit_lr` trains the ViT (frozen in `tiny-sft`).
    `scenes` ("easy" or "normal") asks about the generator's point scenes instead of circles on white;
    `scene_question` says what it counts there (`SCENE_QUESTIONS`); `col_tokens=False` trains and asks with
    the processor's `use_col_tokens` off."""
    from molmo.eval import runner

    restated = min(restate_steps, steps)

    def write(name: str, n: int, seed: int, restate: bool) -> Path:
        if scenes:
            return write_scene_counting(out / name, n, seed, scenes, restate, scene_question)
        return write_circle_counting(out / name, n, seed, colours=colours, restate=restate)

    model_dir = init
    if restated:
        model_dir = _fine_tune(str(model_dir), write("train-restated", train_images, 0, True), restated,
                               out / ("run" if restated == steps else "run-restated"), batch, max_crops,
                               connector_lr, vit_lr, col_tokens)
    if restated < steps:
        fresh = 2 if restated else 0  # the plain phase sees images the restated phase did not
        model_dir = _fine_tune(str(model_dir), write("train", train_images, fresh, False), steps - restated,
                               out / "run", batch, max_crops, connector_lr, vit_lr, col_tokens)
    test_file = write("test", test_images, 1, restated == steps)
    predictor = runner.MolmoPredictor(str(model_dir))
    scores = {}
    for name, p in (("model", predictor), ("blind", runner.BlindPredictor(predictor))):
        metrics = runner.evaluate_own_data(test_file, p, out / f"eval-{name}", max_crops=max_crops)
        scores[name] = metrics["qa"]["exact"]
    answers = Counter(json.loads(line)["answer"] for line in test_file.read_text().splitlines())
    scores["majority"] = answers.most_common(1)[0][1] / test_images
    (out / "scores.json").write_text(json.dumps(scores, indent=1))
    return scores


def main(argv: list[str] | None = None) -> int:
    from molmo.cli_args import ArgumentParser, non_negative_int, positive_float, positive_int
    from molmo.train.runs import run_dir

    p = ArgumentParser(prog="python -m research.tiny_molmo.grounding_check", description=__doc__.splitlines()[0])
    p.add_argument("--init", default=str(run_dir("tiny-pretrain") / "model"),
                   help="checkpoint directory to start from (default: `molmo train tiny-pretrain`'s model)")
    p.add_argument("--steps", type=positive_int, default=150, help="fine-tuning steps")
    p.add_argument("--out", default="runs/grounding-check", help="run folder")
    p.add_argument("--colours", nargs="+", default=["red"],
                   help="circle colours; with several, each question asks about one (a colour-binding check)")
    p.add_argument("--train-images", type=positive_int, default=800, help="generated training images")
    p.add_argument("--batch", type=positive_int, default=8, help="examples per step")
    p.add_argument("--max-crops", type=positive_int, default=4, help="crop budget per image")
    p.add_argument("--restate-steps", type=non_negative_int, default=0,
                   help='answer "red 3" instead of "3" for the first N steps (N >= --steps: throughout)')
    p.add_argument("--connector-lr", type=positive_float, default=None,
                   help="instead of tiny-sft's connector rate (1e-5)")
    p.add_argument("--vit-lr", type=positive_float, default=None,
                   help="train the ViT at this rate (tiny-sft freezes it)")
    p.add_argument("--scenes", choices=("easy", "normal"), default=None,
                   help="the points generator's scenes instead of circles")
    p.add_argument("--scene-question", choices=SCENE_QUESTIONS, default="colour",
                   help="with --scenes: count one colour, the scene's main group, or all shapes")
    p.add_argument("--no-col-tokens", dest="col_tokens", action="store_false",
                   help="image rows without their closing <im_col> (the processor's use_col_tokens off)")
    args = p.parse_args(argv)
    if not (Path(args.init) / "config.json").is_file():
        p.exit(2, f"{p.prog}: no checkpoint at {args.init}; train it first with `molmo train tiny-pretrain` "
                  f"(after tiny-vision and tiny-vision-regions), or pass --init\n")
    scores = run_check(args.init, Path(args.out), steps=args.steps, train_images=args.train_images,
                       batch=args.batch, max_crops=args.max_crops, colours=tuple(args.colours),
                       restate_steps=args.restate_steps, connector_lr=args.connector_lr, vit_lr=args.vit_lr,
                       scenes=args.scenes, scene_question=args.scene_question, col_tokens=args.col_tokens)
    print(" | ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
