"""Dynamic batching across concurrent requests: one bounded queue, one worker, the model in a thread.

Each request becomes a :class:`Job` (its inputs, the key of the model call that can answer it, a future).
The worker takes the first waiting job, then gathers more jobs with the same key until the batch holds
``max_batch_size`` inputs or ``max_wait_ms`` pass with the queue empty; a job with another key (another task
or input shape) starts the next batch.  The batch's inputs go to the model in one call, sorted by length so the
predictor's padded batches waste little, in a worker thread (``run_in_executor``) so the event loop keeps
accepting requests meanwhile; each job's future gets its own slice back, in its own order.  While the model
runs, new requests queue up, so under load every call takes all that waited: batching costs no wait then.

A job larger than ``max_batch_size`` runs alone (requests are never split).  When a batch of several jobs fails,
each job runs again alone, so only the request that caused the error gets it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("transferkit")

Key = tuple[str, str]
"""What one model call can answer: (task name, input form)."""
Runner = Callable[[Key, list[Any]], list[Any]]
"""(key, inputs) -> one output per input, in order: the model call (it runs in a worker thread)."""


@dataclass
class Job:
    """One request's inputs, waiting for its outputs."""

    key: Key
    inputs: list[Any]
    future: asyncio.Future


def input_length(value: Any) -> int:
    """Characters of one input (a text, a pair, a token list): what its padded length grows with."""
    return len(value) if isinstance(value, str) else sum(len(part) for part in value)


class Batcher:
    """Gathers the jobs of concurrent requests into model calls (see the module docstring).

    Args:
        run: the model call, run in a worker thread.
        max_batch_size: inputs per call (a single larger job runs alone).
        max_wait_ms: how long to wait for more jobs while the queue is empty.
        max_queue: jobs that may wait; :meth:`submit` raises ``asyncio.QueueFull`` beyond.
        on_batch: called with the number of inputs of every model call (metrics).
    """

    def __init__(self, run: Runner, max_batch_size: int, max_wait_ms: float, max_queue: int,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.run, self.max_batch_size, self.max_wait_ms, self.max_queue = run, max_batch_size, max_wait_ms, max_queue
        self.on_batch = on_batch
        self.batches = 0
        self.largest_batch = 0
        self._queue: asyncio.Queue[Job] | None = None
        self._carry: Job | None = None  # a job of another key, first of the next batch
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue, self._arrived = asyncio.Queue(self.max_queue), asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="transferkit-model")
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Stop the worker; jobs still waiting are cancelled."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        waiting = [self._carry] if self._carry else []
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for job in waiting:
            job.future.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def depth(self) -> int:
        """Jobs waiting for the model (not counting the batch it is running)."""
        return (self._queue.qsize() if self._queue else 0) + (self._carry is not None)

    async def submit(self, key: Key, inputs: list[Any]) -> list[Any]:
        """The outputs of ``inputs``; raises ``asyncio.QueueFull`` when ``max_queue`` jobs are waiting."""
        if self._queue is None or self._arrived is None:
            raise RuntimeError("the batcher is not started")
        job = Job(key, inputs, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        self._arrived.set()
        return await job.future

    async def _work(self) -> None:
        while True:
            try:
                jobs = await self._gather()
                if jobs:
                    await self._call(jobs)
            except asyncio.CancelledError:
                raise
            except Exception:  # the worker must outlive any one batch
                logger.exception("batch failed outside the model call")

    async def _next(self, timeout: float | None) -> Job | None:
        """The next waiting job, waiting up to ``timeout`` seconds (None: until one comes)."""
        assert self._queue is not None and self._arrived is not None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._queue.empty():
            self._arrived.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return None
        return self._queue.get_nowait()

    async def _gather(self) -> list[Job]:
        """The jobs of the next model call: the first waiting job and the same-key jobs that fit beside it."""
        first = self._carry or await self._next(None)
        self._carry = None
        if first is None or first.future.done():  # its client went away
            return []
        jobs, size = [first], len(first.inputs)
        deadline = asyncio.get_running_loop().time() + self.max_wait_ms / 1000
        while size < self.max_batch_size:
            job = await self._next(max(deadline - asyncio.get_running_loop().time(), 0))
            if job is None:
                break
            if job.future.done():
                continue
            if job.key != first.key or size + len(job.inputs) > self.max_batch_size:
                self._carry = job
                break
            jobs.append(job)
            size += len(job.inputs)
        return jobs

    async def _call(self, jobs: list[Job]) -> None:
        """One model call on every input of ``jobs`` (sorted by length); each job's future gets its slice."""
        inputs = [value for job in jobs for value in job.inputs]
        order = sorted(range(len(inputs)), key=lambda i: input_length(inputs[i]))
        self.batches, self.largest_batch = self.batches + 1, max(self.largest_batch, len(inputs))
        if self.on_batch is not None:
            self.on_batch(len(inputs))
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.run, jobs[0].key, [inputs[i] for i in order])
        except Exception as exc:
            if len(jobs) > 1:  # find the job that fails: each alone
                for job in jobs:
                    await self._call([job])
            elif not jobs[0].future.done():
                jobs[0].future.set_exception(exc)
            return
        unsorted: list[Any] = [None] * len(inputs)
        for position, index in enumerate(order):
            unsorted[index] = outputs[position]
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(unsorted[start:start + len(job.inputs)])
            start += len(job.inputs)
