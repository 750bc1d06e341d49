"""Decoder check: can the tiny language model learn to count from image tokens that are already perfect?

No pixels and no ViT: each scene is drawn symbolically on a grid of image tokens, and every token is an ideal
code (one-hot colour of the object whose centre falls in it, a presence bit, the centre's offset inside the
token, the token's grid position; optionally every colour's count). A learned linear map stands in for the
connector, scaled to the text embeddings' RMS as `init_weights` does. The `tiny-molmo` decoder, with the
project's initialisation and the shipped tokenizer, learns "How many <colour> objects are there?" and is scored
on unseen scenes. It isolates the language-model half of the grounding problem: what the decoder cannot learn
here in N steps it will not learn in N steps from a real ViT either.

    python -m research.tiny_molmo.decoder_check --colours 3 --max-count 4 --grid 4 --batch 32 --steps 1500
    python -m research.tiny_molmo.decoder_check --question-first       # question tokens before the image tokens
    python -m research.tiny_molmo.decoder_check --counts-in-every-token  # reading a count, not counting
    python -m research.tiny_molmo.decoder_check --point-then-count       # "x y" of each asked object, then the count
    python -m research.tiny_molmo.decoder_check --distractor-ramp 0.5    # other colours fade in over half the run
    python -m research.tiny_molmo.decoder_check --restate-steps 400      # "... Answer: red" then the count
    python -m research.tiny_molmo.decoder_check --restate-steps 400 --space-before-digit  # "... Answer: red", " ", count
    python -m research.tiny_molmo.decoder_check --restate-steps 300 --steps 600  # restated first, then the plain prompt
    python -m research.tiny_molmo.decoder_check --steps 400 --no-qk-norm  # the decoder without query/key norms
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from molmo.train.optim import learning_rate

COLOUR_WORDS = ("red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "gray", "black", "white")


@dataclass(frozen=True)
class DecoderCheck:
    colours: int = 3
    max_count: int = 4  # per colour; answers stay single digits (and grid <= 10 for point-then-count)
    grid: int = 4  # image tokens per side
    batch: int = 32
    steps: int = 300
    lr: float = 1e-3
    warmup: int = 50
    question_first: bool = False
    counts_in_every_token: bool = False
    # The answer lists the grid column and row of every object of the asked colour in token order, then " total"
    # and the count (Molmo's point-then-count, on the token grid); scored on the greedy answer's count.
    point_then_count: bool = False
    # A curriculum: the other colours' objects fade in over this fraction of the steps (none at step 1; 0: off).
    distractor_ramp: float = 0.0
    # For the first N steps the prompt ends with the asked colour word, so the count is read right after it;
    # then the plain prompt (N >= steps: restated throughout, and scored so).
    restate_steps: int = 0
    # The prompt ends with the space token, as in a real answer "red 3" when the tokenizer writes " 3" as " ", "3".
    space_before_digit: bool = False
    test_scenes: int = 400
    seed: int = 0
    # The tiny-molmo decoder norms queries and keys; without (as before), it stalls at about half.
    qk_norm: bool = True

    @property
    def code_dim(self) -> int:
        return self.colours + 5 + (self.colours if self.counts_in_every_token else 0)


def draw_scenes(check: DecoderCheck, n: int, gen: torch.Generator,
                others: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """codes [n, grid², code_dim], the asked colour [n] and its count [n]. Objects sit on distinct tokens.
    `others` < 1 keeps only that share of each other colour's objects (the first ones in token order)."""
    c, g = check.colours, check.grid
    if c * check.max_count > g * g:
        raise ValueError(f"{c} colours x {check.max_count} objects do not fit on {g}x{g} tokens")
    if not 1 <= c <= len(COLOUR_WORDS):
        raise ValueError(f"colours must be 1..{len(COLOUR_WORDS)} (one question word each), not {c}")
    if check.max_count > 9 or g > 10:
        raise ValueError("answers and grid places are single digits: max_count <= 9 and grid <= 10")
    counts = torch.randint(0, check.max_count + 1, (n, c), generator=gen)
    codes = torch.zeros(n, g * g, check.code_dim)
    ys, xs = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    codes[:, :, c + 3] = xs.flatten() / g
    codes[:, :, c + 4] = ys.flatten() / g
    for i in range(n):
        slots = torch.randperm(g * g, generator=gen).tolist()
        for colour in range(c):
            for _ in range(int(counts[i, colour])):
                t = slots.pop()
                codes[i, t, colour] = codes[i, t, c] = 1.0
                codes[i, t, c + 1:c + 3] = torch.rand(2, generator=gen)
    asked = torch.randint(0, c, (n,), generator=gen)
    if others < 1.0:
        for i in range(n):
            for colour in set(range(c)) - {int(asked[i])}:
                tokens = torch.nonzero(codes[i, :, colour]).flatten()
                codes[i, tokens[round(len(tokens) * others):], :c + 3] = 0.0
        counts = codes[:, :, :c].sum(1).long()
    if check.counts_in_every_token:
        codes[:, :, c + 5:] = counts[:, None, :].float() / check.max_count
    return codes, asked, counts.gather(1, asked[:, None])[:, 0]


class ReadingModel(nn.Module):
    """The tiny-molmo decoder reading projected codes, then a question; answers are scored over the digits."""

    def __init__(self, check: DecoderCheck, tokenizer):
        super().__init__()
        from molmo.model.config import tiny_molmo
        from molmo.model.init import init_weights
        from molmo.model.molmo import MolmoModel

        config = tiny_molmo()
        molmo = MolmoModel(dataclasses.replace(config, llm=dataclasses.replace(config.llm, qk_norm=check.qk_norm)))
        init_weights(molmo, seed=check.seed)
        self.decoder, self.check = molmo.llm, check
        self.project = nn.Linear(check.code_dim, molmo.config.llm.d_model)
        with torch.no_grad():  # project random codes to the text embeddings' RMS, as the real connector starts
            self.project.weight.normal_(0, 1 / math.sqrt(check.code_dim))
            self.project.bias.zero_()
            probe = draw_scenes(check, 64, torch.Generator().manual_seed(check.seed))[0]
            scale = self.decoder.embed.embedding.pow(2).mean().sqrt() / self.project(probe).pow(2).mean().sqrt()
            self.project.weight.mul_(scale)
        space = []
        if check.space_before_digit:
            space = tokenizer.encode(" 3")[:-1]
            if len(space) != 1:
                raise ValueError("--space-before-digit needs a tokenizer that writes ' 3' as a space token, then '3'")
        self.prompts = {restated: torch.tensor([tokenizer.encode(f" How many {w} objects are there? Answer:"
                                                                 + (f" {w}" if restated else "")) + space
                                                for w in COLOUR_WORDS[:check.colours]])
                        for restated in (False, True)}
        # Answer vocabulary: digits 0..9, then " total" and the end of text.
        self.vocab = torch.tensor([tokenizer.encode(f" {k}")[-1] for k in range(10)]
                                  + [tokenizer.encode(" total")[-1], tokenizer.eos_token_id])
        self.bos = tokenizer.eos_token_id

    def forward(self, codes: torch.Tensor, asked: torch.Tensor, answer: torch.Tensor | None = None,
                restated: bool = False) -> torch.Tensor:
        """Logits over the answer vocabulary after the question and after each given answer token
        ([n, 1 + L, 12]; answer [n, L] indices into the answer vocabulary)."""
        n = len(codes)
        image = self.project(codes)
        text = self.decoder.embed(self.prompts[restated][asked])
        bos = self.decoder.embed(torch.full((n, 1), self.bos))
        x = torch.cat([bos, text, image] if self.check.question_first else [bos, image, text], dim=1)
        if self.check.question_first:  # the answer is read after the image
            x = torch.cat([x, text[:, -1:]], dim=1)
        if answer is not None and answer.shape[1]:
            x = torch.cat([x, self.decoder.embed(self.vocab[answer])], dim=1)
        t = x.shape[1]
        logits, _ = self.decoder(x, torch.ones(n, t), torch.arange(t).expand(n, t))
        length = 1 + (answer.shape[1] if answer is not None else 0)
        return logits[:, -length:, self.vocab]


TOTAL, END = 10, 11  # answer-vocabulary indices of " total" and the end of text


def point_answers(check: DecoderCheck, codes: torch.Tensor, asked: torch.Tensor) -> torch.Tensor:
    """[n, 2 * max_count + 3] point-then-count answers: column, row of each asked object in token order, then
    TOTAL, the count and END, padded with END."""
    g, width = check.grid, 2 * check.max_count + 3
    out = torch.full((len(codes), width), END)
    for i in range(len(codes)):
        tokens = torch.nonzero(codes[i, :, asked[i]]).flatten().tolist()
        seq = [v for t in tokens for v in (t % g, t // g)] + [TOTAL, len(tokens), END]
        out[i, :len(seq)] = torch.tensor(seq)
    return out


@torch.no_grad()
def answered_counts(model: ReadingModel, codes: torch.Tensor, asked: torch.Tensor,
                    restated: bool = False) -> torch.Tensor:
    """The count in each scene's answer: the first token (count mode), or the token after the greedy
    answer's TOTAL (point-then-count; -1 when it never says TOTAL)."""
    if not model.check.point_then_count:
        return model(codes, asked, restated=restated)[:, 0, :10].argmax(-1)
    answer = torch.zeros(len(codes), 0, dtype=torch.long)
    for _ in range(2 * model.check.max_count + 2):
        answer = torch.cat([answer, model(codes, asked, answer, restated)[:, -1].argmax(-1, keepdim=True)], dim=1)
    counts = torch.full((len(codes),), -1)
    for i, row in enumerate(answer.tolist()):
        if TOTAL in row[:-1]:
            counts[i] = row[row.index(TOTAL) + 1]
    return counts


def run_check(check: DecoderCheck, tokenizer=None, log_every: int = 0) -> list[tuple[int, float]]:
    """Train and return (step, exact accuracy on unseen scenes) at each evaluation (10 per run)."""
    if not 0.0 <= check.distractor_ramp <= 1.0:
        raise ValueError(f"distractor_ramp is a fraction of the steps (0..1), not {check.distractor_ramp}")
    torch.manual_seed(check.seed)
    if tokenizer is None:
        from molmo.assets import DEFAULT_MODEL_DIR
        from molmo.text.tokenizer import MolmoTokenizer
        tokenizer = MolmoTokenizer.from_dir(DEFAULT_MODEL_DIR)
    model = ReadingModel(check, tokenizer)
    opt = torch.optim.AdamW(model.parameters(), lr=check.lr, weight_decay=0.0)
    train_gen = torch.Generator().manual_seed(check.seed + 1)
    test = draw_scenes(check, check.test_scenes, torch.Generator().manual_seed(check.seed + 2))
    if log_every:
        print(f"most frequent answer on the unseen scenes: {test[2].bincount().max().item() / len(test[2]):.3f}")
    history, every = [], max(1, check.steps // 10)
    for step in tqdm(range(1, check.steps + 1), desc="decoder check", unit="step", disable=not log_every):
        for group in opt.param_groups:  # warm-up then cosine to 10%, as the presets
            group["lr"] = learning_rate(step, check.lr, check.warmup, check.steps)
        others = min(1.0, step / (check.distractor_ramp * check.steps)) if check.distractor_ramp else 1.0
        codes, asked, answer = draw_scenes(check, check.batch, train_gen, others)
        restated = step <= check.restate_steps  # evaluated below with the prompt it is trained on
        if check.point_then_count:  # teacher forcing; the loss stops after the first END
            target = point_answers(check, codes, asked)
            logits = model(codes, asked, target[:, :-1], restated)
            after_end = (target == END).long().cumsum(1) > 1
            loss = nn.functional.cross_entropy(logits[~after_end], target[~after_end])
        else:
            loss = nn.functional.cross_entropy(model(codes, asked, restated=restated)[:, 0, :10], answer)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % every == 0 or step == check.steps:
            accuracy = float((answered_counts(model, test[0], test[1], restated) == test[2]).float().mean())
            history.append((step, accuracy))
            if log_every:
                print(f"step {step} | loss {loss.item():.3f} | unseen exact {accuracy:.3f}", flush=True)
    return history


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = DecoderCheck()
    for name in ("colours", "max_count", "grid", "batch", "steps", "seed", "restate_steps"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--distractor-ramp", type=float, default=defaults.distractor_ramp)
    p.add_argument("--space-before-digit", action="store_true")
    p.add_argument("--question-first", action="store_true")
    p.add_argument("--counts-in-every-token", action="store_true")
    p.add_argument("--point-then-count", action="store_true")
    p.add_argument("--no-qk-norm", dest="qk_norm", action="store_false",
                   help="the decoder without query/key norms (tiny-molmo before it had them)")
    args = vars(p.parse_args(argv))
    history = run_check(DecoderCheck(**args), log_every=1)
    print(f"final unseen exact {history[-1][1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
