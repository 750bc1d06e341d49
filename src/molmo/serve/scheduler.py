"""Continuous batching (iteration-level scheduling): one worker thread runs decode steps over the requests in
flight; a new request joins at the next step (its prompt pre-filled, its keys and values merged into the running
cache) and a finished or cancelled one leaves at once, so nobody waits for the longest answer of a batch.

    scheduler = ContinuousBatcher(model, BatcherSettings(max_batch_size=16, max_queue=64)).start()
    job = scheduler.submit(request, prepared, temperature=0.0, top_p=1.0, seed=None)
    answer = job.future.result();  job.cancel()      # cancel: the row leaves at the next step
    scheduler.close()

Rows share one key/value cache with a common write column: a decode step writes every row's new key at the
same column, and each row's attention mask marks which columns are its own. Positions come from each row's
own position ids (keys are rotated when written), so the column order does not matter: when rows join or
leave, the cache is rebuilt once for that step, keeping only the rows in flight and the columns some row still
uses. Greedy answers equal one-at-a-time `Molmo.generate_requests`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from molmo.api import Molmo, StreamDecoder
from molmo.model.generation import _sample
from molmo.model.kv_cache import KVCache
from molmo.model.molmo import default_position_ids
from molmo.preprocess.collate import collate
from molmo.serve.batcher import BatcherSettings, Job, JobQueue
from molmo.text.stops import cut_at_stop, first_stop


@dataclass
class Row:
    """A request in flight: its tokens so far and how it streams."""

    job: Job
    stream: StreamDecoder | None
    generator: torch.Generator | None
    prompt_tokens: int
    tokens: list[int] = field(default_factory=list)
    reason: str | None = None  # set when the row finishes: "stop" | "length"


class ContinuousBatcher(JobQueue):
    thread_name = "molmo-scheduler"

    def __init__(self, model: Molmo, settings: BatcherSettings | None = None):
        super().__init__(model, settings)
        self._rows: list[Row] = []
        self._cache: KVCache | None = None
        self._attn: torch.Tensor | None = None  # [rows, capacity] columns each row attends to
        self._next_pos: torch.Tensor | None = None  # [rows] position id of each row's next input token
        self._logits: torch.Tensor | None = None  # [rows, vocab] for each row's next token
        self._device = next(model.model.parameters()).device
        self._dtype = model.model.llm.embed.embedding.dtype

    @property
    def running(self) -> int:
        return len(self._live())

    def _live(self) -> list[int]:
        return [i for i, r in enumerate(self._rows) if r.reason is None]

    # ---------------------------------------------------------------- the loop
    @torch.no_grad()  # grad mode is per thread: without this the cache would chain every step's graph
    def _loop(self) -> None:
        while True:
            joiners = self._take_joiners()
            if joiners is None:
                self._fail_all(RuntimeError("the server is shutting down"))
                return
            try:
                if joiners:
                    self._join(joiners)
                if self._rows:
                    self._step()
            except Exception as e:  # noqa: BLE001 - reported to every request in flight; the loop goes on
                self.stats.failures += len(self._rows)
                self._fail_all(e)

    def _take_joiners(self) -> list[Job] | None:
        """Waiting jobs that fit into free slots; blocks while nothing runs; None once closed. While rows run,
        joiners are admitted once enough wait to fill the free slots or the oldest has waited `join_window_s`:
        pre-filling several prompts in one forward costs much less than one forward each."""
        with self._cond:
            while not self._jobs and not self._rows and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            free = self.settings.max_batch_size - self.running
            if not self._rows:
                self._cond.wait_for(lambda: len(self._jobs) >= free or self._closed, self.settings.window_s)
            elif len(self._jobs) < free and self._jobs and \
                    time.monotonic() - self._jobs[0].submitted < self.settings.join_window_s:
                return []
            joiners = []
            while self._jobs and len(joiners) < free:
                job = self._jobs.popleft()
                if not job.cancelled and job.future.set_running_or_notify_cancel():
                    joiners.append(job)
                else:
                    self.stats.cancelled += 1
            return joiners

    def _step(self) -> None:
        """Sample every live row's next token, retire finished / cancelled rows, run one decode step. A row that
        leaves stays in the batch as a masked, ignored row until joiners arrive or half the batch has left:
        the cache is rebuilt then, not on every departure."""
        rows, live = self._rows, self._live()
        for i, tok in zip(live, self._choose([rows[i] for i in live], self._logits[live])):
            if rows[i].job.cancelled:
                rows[i].reason = "cancelled"
            else:
                self._advance_row(rows[i], tok)
            if rows[i].reason is not None:
                self._finish(rows[i])
        live = self._live()
        if len(live) <= len(rows) // 2:
            self._rebuild(live, None)
        if not self._rows:
            return
        cache, attn = self._cache, self._attn
        column = cache.length
        if column + 1 > attn.shape[1]:
            attn = self._attn = torch.cat([attn, attn.new_zeros(attn.shape[0], attn.shape[1])], dim=1)
        attn[:, column] = True
        ids = torch.tensor([[r.tokens[-1] if r.tokens else 0] for r in self._rows], device=self._device)
        out = self.model.model(ids, attention_mask=attn[:, :column + 1], position_ids=self._next_pos[:, None],
                               past_key_values=cache, use_cache=True, logits_to_keep=1)
        self._next_pos += 1
        self._logits = out.logits[:, -1]

    @staticmethod
    def _choose(rows: list[Row], logits: torch.Tensor) -> list[int]:
        """Each row's next token: greedy rows in one argmax, sampling rows with their own settings and seed."""
        greedy = logits.argmax(dim=-1).tolist()
        return [greedy[i] if r.job.temperature <= 0 else
                int(_sample(logits[i:i + 1], r.job.temperature, r.job.top_p, None, r.generator)[0])
                for i, r in enumerate(rows)]

    def _advance_row(self, row: Row, tok: int) -> None:
        req = row.job.request
        if tok in self.model.eos_token_ids:
            row.reason = "stop"
            return
        row.tokens.append(tok)
        if row.stream is not None:
            delta = row.stream.push(tok)
            if delta:
                req.on_text(delta)
        if req.stop:
            decode = self.model.tokenizer.decode
            cut = first_stop(decode(row.tokens), req.stop)
            if cut is not None:
                row.reason = "stop"
                while row.tokens and len(decode(row.tokens)) > cut:
                    row.tokens.pop()  # drop the tokens that spell the stop string
                return
        if len(row.tokens) >= req.max_new_tokens:
            row.reason = "length"

    def _finish(self, row: Row) -> None:
        job = row.job
        if row.reason == "cancelled":
            job.future.cancel() or job.future.set_exception(ConnectionAbortedError("the client went away"))
            self.stats.cancelled += 1
            return
        text, hit = cut_at_stop(self.model.tokenizer.decode(row.tokens), job.request.stop)
        if row.stream is not None:
            delta = row.stream.finish(text.lstrip())
            if delta:
                job.request.on_text(delta)
        size = job.prepared[1]
        self.stats.rows += 1
        job.future.set_result(self.model.make_answer(text, size, "stop" if hit else row.reason, row.prompt_tokens,
                                                     len(row.tokens)))

    # ---------------------------------------------------------------- joining
    def _join(self, jobs: list[Job]) -> None:
        try:
            cache, valid, logits, next_pos = self._prefill(jobs)
        except Exception as e:  # noqa: BLE001 - one bad prompt must not fail its neighbours: retry alone
            if len(jobs) == 1:
                self.stats.failures += 1
                jobs[0].future.set_exception(e)
                return
            for job in jobs:
                self._join([job])
            return
        rows = []
        for job in jobs:
            req, example = job.request, job.prepared[0]
            gen = None
            if job.seed is not None:
                gen = torch.Generator(device=self._device)
                gen.manual_seed(int(job.seed))
            stream = StreamDecoder(self.model.tokenizer.decode, req.stop) if req.on_text else None
            rows.append(Row(job, stream, gen, int((example["input_ids"] >= 0).sum())))
        self.stats.batches += 1
        self._rebuild(self._live(), (rows, cache, valid, logits, next_pos))
        self.stats.largest_batch = max(self.stats.largest_batch, len(self._rows))

    def _prefill(self, jobs: list[Job]) -> tuple[KVCache, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The joiners' prompts in one forward (right-padded), as `generate` does its prefill: their cache, which
        of its columns are real tokens, the logits of each last real token, and each row's next position."""
        batch = collate([job.prepared[0] for job in jobs])
        input_ids = batch["input_ids"].to(self._device)
        mask = input_ids != -1
        lengths = mask.sum(dim=1)
        images = {k: batch[k].to(self._device) for k in ("images", "image_masks", "image_input_idx")
                  if batch.get(k) is not None}
        if "images" in images:
            images["images"] = images["images"].to(self._dtype)
        cache = KVCache.allocate(self.model.model.config.llm, len(jobs), input_ids.shape[1], self._dtype, self._device)
        last_idx = (mask.long().cumsum(1) == lengths[:, None]).long().argmax(dim=1)
        out = self.model.model(input_ids, attention_mask=mask, position_ids=default_position_ids(mask),
                               past_key_values=cache, use_cache=True, logits_to_keep=last_idx, **images)
        return cache, mask, out.logits[:, -1], lengths

    def _rebuild(self, keep: list[int], joining: tuple | None) -> None:
        """One new cache for rows `keep` of the running batch plus the joiners: only columns some row uses."""
        parts = []  # (keys per layer, values per layer, valid [n, width], logits, next_pos, rows)
        if keep and self._cache is not None:
            idx = torch.tensor(keep, device=self._device)
            valid = self._attn[idx, :self._cache.length]
            cols = valid.any(dim=0).nonzero().squeeze(1)
            parts.append(([k[idx][:, :, cols] for k in self._cache.keys],
                          [v[idx][:, :, cols] for v in self._cache.values],
                          valid[:, cols], self._logits[idx], self._next_pos[idx], [self._rows[i] for i in keep]))
        if joining is not None:
            rows, cache, valid, logits, next_pos = joining
            parts.append((cache.keys, cache.values, valid, logits, next_pos, rows))
        if not parts:
            self._rows, self._cache, self._attn, self._logits, self._next_pos = [], None, None, None, None
            return
        width = max(p[2].shape[1] for p in parts)
        rows = [r for p in parts for r in p[5]]
        room = max(r.job.request.max_new_tokens - len(r.tokens) for r in rows)
        capacity = width + room + 1
        sizes = [p[2].shape[0] for p in parts]

        def stack(tensors: list[torch.Tensor]) -> torch.Tensor:
            ref = tensors[0]
            out = ref.new_zeros(sum(sizes), ref.shape[1], capacity, ref.shape[3])
            start = 0
            for t, n in zip(tensors, sizes):
                out[start:start + n, :, :t.shape[2]] = t
                start += n
            return out

        layers = len(parts[0][0])
        keys = [stack([p[0][layer] for p in parts]) for layer in range(layers)]
        values = [stack([p[1][layer] for p in parts]) for layer in range(layers)]
        attn = torch.zeros(sum(sizes), capacity, dtype=torch.bool, device=self._device)
        start = 0
        for p, n in zip(parts, sizes):
            attn[start:start + n, :p[2].shape[1]] = p[2]
            start += n
        self._cache = KVCache(keys, values)
        self._cache.length = width
        self._attn, self._rows = attn, rows
        self._logits = torch.cat([p[3] for p in parts])
        self._next_pos = torch.cat([p[4] for p in parts])

    def _fail_all(self, error: Exception) -> None:
        for row in self._rows:
            if not row.job.future.done():
                row.job.future.set_exception(error)
        self._rows, self._cache, self._attn, self._logits, self._next_pos = [], None, None, None, None
        with self._cond:
            while self._closed and self._jobs:
                job = self._jobs.popleft()
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(error)
