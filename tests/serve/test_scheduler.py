"""Continuous batching: answers equal one-at-a-time greedy generation (the embedded model, images and text,
stop strings, different lengths); a request that arrives while another runs joins at the next step and leaves
when it is done; cancelled rows leave; the queue is bounded; seeded sampling is reproducible."""

from __future__ import annotations

import time

import pytest

from molmo.api import GenerationRequest, Molmo
from molmo.serve.batcher import BatcherSettings, QueueFullError
from molmo.serve.commands import SAMPLES_DIR
from molmo.serve.scheduler import ContinuousBatcher


@pytest.fixture(scope="module")
def embedded() -> Molmo:
    return Molmo.from_pretrained()


QUESTIONS = [("shapes.png", "Point to the yellow shapes.", 24, ()), (None, "What is this?", 9, ()),
             ("clock.png", "Read the time on this clock.", 16, ()),
             ("chart.png", "Which bar is the highest?", 30, (".",)),
             ("shapes.png", "How many gray hexagons are there?", 40, ()), (None, "Describe this image.", 5, ())]


def requests() -> list[GenerationRequest]:
    return [GenerationRequest(SAMPLES_DIR / img if img else None, f" User: {q} Assistant:", n, stop)
            for img, q, n, stop in QUESTIONS]


def test_continuous_batching_equals_one_at_a_time(embedded):
    reqs = requests()
    prepared = [embedded.prepare(r) for r in reqs]
    alone = [embedded.generate_requests([r], prepared=[p])[0] for r, p in zip(reqs, prepared)]
    scheduler = ContinuousBatcher(embedded, BatcherSettings(max_batch_size=3, max_queue=8)).start()
    try:
        jobs = []
        for r, p in zip(reqs, prepared):  # staggered: rows join a running batch at different steps
            jobs.append(scheduler.submit(r, p))
            time.sleep(0.02)
        answers = [j.future.result(timeout=120) for j in jobs]
    finally:
        scheduler.close()
    assert [a.text for a in answers] == [a.text for a in alone]
    assert [a.finish_reason for a in answers] == [a.finish_reason for a in alone]
    assert [a.usage for a in answers] == [a.usage for a in alone]
    assert [a.points for a in answers] == [a.points for a in alone]
    assert scheduler.stats.largest_batch == 3 and scheduler.stats.rows == len(reqs)


def test_a_short_request_joins_and_leaves_while_a_long_one_runs(api_model):
    long = GenerationRequest(None, " User: Describe this image. Assistant:", 400)
    short = GenerationRequest(None, " User: What is this? Assistant:", 3)
    scheduler = ContinuousBatcher(api_model, BatcherSettings(max_batch_size=4, max_queue=4)).start()
    try:
        first = scheduler.submit(long, api_model.prepare(long))
        while scheduler.running == 0:
            time.sleep(0.005)
        second = scheduler.submit(short, api_model.prepare(short))
        second.future.result(timeout=60)
        assert not first.future.done()  # the short one left before the long one finished
        assert scheduler.stats.largest_batch == 2
        first.cancel()
        with pytest.raises(ConnectionAbortedError):
            first.future.result(timeout=10)
        assert scheduler.stats.cancelled == 1
    finally:
        scheduler.close()


def test_queue_is_bounded_and_cancelled_jobs_never_start(api_model):
    req = GenerationRequest(None, " User: What is this? Assistant:", 2)
    prepared = api_model.prepare(req)
    scheduler = ContinuousBatcher(api_model, BatcherSettings(max_batch_size=1, max_queue=2))
    a, b = scheduler.submit(req, prepared), scheduler.submit(req, prepared)
    with pytest.raises(QueueFullError, match="limit 2"):
        scheduler.submit(req, prepared)
    b.cancel()
    scheduler.start()
    try:
        assert a.future.result(timeout=30).usage.completion_tokens == 2
        assert b.future.cancelled()
    finally:
        scheduler.close()


def test_seeded_sampling_is_reproducible(api_model):
    req = GenerationRequest(None, " User: Describe this image. Assistant:", 12)
    prepared = api_model.prepare(req)
    scheduler = ContinuousBatcher(api_model, BatcherSettings(max_batch_size=4)).start()
    try:
        texts = [scheduler.submit(req, prepared, temperature=1.0, seed=s).future.result(timeout=30).text
                 for s in (7, 7, 8)]
    finally:
        scheduler.close()
    assert texts[0] == texts[1] and texts[0] != texts[2]
