"""Static batching for the server (the baseline; `molmo.serve.scheduler` batches continuously): concurrent
requests wait in a bounded queue; one worker thread takes the oldest, waits a short window for more with the
same sampling settings (up to `max_batch_size`), and runs them as ONE batched generate
(`Molmo.generate_requests`), each row keeping its own token limit, stop strings and stream callback; a batch
waits for its longest answer. Also the job, settings and statistics both schedulers share.

    batcher = Batcher(model, BatcherSettings(max_batch_size=8, window_s=0.01, max_queue=64)).start()
    job = batcher.submit(request, prepared, temperature=0.0, top_p=1.0)   # job.future: Future[Answer]
    batcher.close()
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from molmo.api import GenerationRequest, Molmo


class QueueFullError(RuntimeError):
    """More requests are waiting than the server allows; the client should retry later."""


@dataclass(frozen=True)
class BatcherSettings:
    max_batch_size: int = 8
    window_s: float = 0.01  # how long the first request of a batch waits for company
    max_queue: int = 64
    join_window_s: float = 0.2  # continuous: while rows run, joiners gather this long to pre-fill together

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue < 1 or self.window_s < 0 or self.join_window_s < 0:
            raise ValueError(f"invalid batcher settings {self}")


@dataclass
class Job:
    request: GenerationRequest
    prepared: tuple
    temperature: float
    top_p: float
    seed: int | None = None
    future: Future = field(default_factory=Future)
    submitted: float = field(default_factory=time.monotonic)
    cancelled: bool = False  # set by the server when the client goes away

    def cancel(self) -> None:
        self.cancelled = True
        self.future.cancel()  # still queued: never starts

    @property
    def key(self) -> tuple:  # rows of one generate call share the sampling settings
        return (self.temperature, self.top_p, self.seed)


@dataclass
class BatcherStats:
    batches: int = 0
    rows: int = 0
    largest_batch: int = 0
    failures: int = 0
    cancelled: int = 0


class JobQueue:
    """What both schedulers share: the bounded queue of jobs, its worker thread's start and stop, and `submit`.
    A subclass runs the jobs in `_loop` and says how many rows are in flight (`running`)."""

    thread_name = "molmo-jobs"

    def __init__(self, model: Molmo, settings: BatcherSettings | None = None):
        self.model = model
        self.settings = settings or BatcherSettings()
        self.stats = BatcherStats()
        self._jobs: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def queued(self) -> int:
        return len(self._jobs)

    @property
    def running(self) -> int:
        raise NotImplementedError

    def _loop(self) -> None:
        raise NotImplementedError

    def submit(self, request: GenerationRequest, prepared: tuple, *, temperature: float = 0.0,
               top_p: float = 1.0, seed: int | None = None) -> Job:
        job = Job(request, prepared, float(temperature), float(top_p), seed)
        with self._cond:
            if self._closed:
                raise RuntimeError("the scheduler is closed")
            if len(self._jobs) >= self.settings.max_queue:
                raise QueueFullError(f"{len(self._jobs)} requests are already waiting (limit "
                                     f"{self.settings.max_queue}); retry later")
            self._jobs.append(job)
            self._cond.notify()
        return job


class Batcher(JobQueue):
    thread_name = "molmo-batcher"

    def __init__(self, model: Molmo, settings: BatcherSettings | None = None):
        super().__init__(model, settings)
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    # ---------------------------------------------------------------- worker
    def _take_batch(self) -> list[Job]:
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            if self._closed and not self._jobs:
                return []
            first = self._jobs.popleft()
            batch = [first]
            deadline = time.monotonic() + self.settings.window_s
            while len(batch) < self.settings.max_batch_size:
                same = [j for j in self._jobs if j.key == first.key]
                for j in same[: self.settings.max_batch_size - len(batch)]:
                    self._jobs.remove(j)
                    batch.append(j)
                left = deadline - time.monotonic()
                if len(batch) >= self.settings.max_batch_size or left <= 0 or self._closed:
                    break
                self._cond.wait(left)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            batch = [j for j in batch if not j.cancelled and j.future.set_running_or_notify_cancel()]
            if batch:
                self._running = len(batch)
                self._run(batch)
                self._running = 0

    def _run(self, batch: list[Job]) -> None:
        try:
            answers = self.model.generate_requests([j.request for j in batch], temperature=batch[0].temperature,
                                                   top_p=batch[0].top_p, seed=batch[0].seed,
                                                   prepared=[j.prepared for j in batch])
        except Exception as e:  # noqa: BLE001 - reported to the waiting requests
            if len(batch) > 1:  # one bad row must not fail its neighbours: retry each alone
                for j in batch:
                    self._run_alone(j)
                return
            self.stats.failures += 1
            batch[0].future.set_exception(e)
            return
        self.stats.batches += 1
        self.stats.rows += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for j, a in zip(batch, answers):
            j.future.set_result(a)

    def _run_alone(self, job: Job) -> None:
        try:
            answer = self.model.generate_requests([job.request], temperature=job.temperature, top_p=job.top_p,
                                                  seed=job.seed, prepared=[job.prepared])[0]
        except Exception as e:  # noqa: BLE001
            self.stats.failures += 1
            job.future.set_exception(e)
            return
        self.stats.batches += 1
        self.stats.rows += 1
        job.future.set_result(answer)
