"""Run jobs of a dependency graph concurrently: each starts as soon as everything it needs has finished, at
most `workers` at a time, the costliest ready one first (so a long stage does not start last and leave the
other cores idle at the end). Used by `mlsec run` over the catalog's `needs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """One node of the graph."""

    name: str
    """Unique name (a stage id)."""
    needs: frozenset[str] = frozenset()
    """Names of the jobs that must finish before this one starts."""
    cost: float = 0.0
    """Expected seconds; among ready jobs the costliest starts first (ties: the order given)."""


def check(jobs: Sequence[Job]) -> None:
    """ValueError for a repeated name, a need that is not a job, or a cycle."""
    names = [j.name for j in jobs]
    if len(names) != len(set(names)):
        raise ValueError(f"job names repeat: {names}")
    for j in jobs:
        unknown = sorted(j.needs - set(names))
        if unknown:
            raise ValueError(f"job {j.name} needs {unknown}, which are not jobs")
    done: set[str] = set()
    left = list(jobs)
    while left:
        ready = [j for j in left if j.needs <= done]
        if not ready:
            raise ValueError(f"jobs {sorted(j.name for j in left)} need each other")
        done.update(j.name for j in ready)
        left = [j for j in left if j.name not in done]


def run(jobs: Sequence[Job], workers: int, execute: Callable[[Job], T],
        finished: Callable[[Job, T], None] = lambda job, result: None) -> dict[str, T]:
    """Run every job once its needs are done, up to `workers` at a time; `finished` is called (in this thread)
    as each one ends. Returns each job's result by name. An exception from `execute` propagates after the
    jobs already running have ended; nothing new is started then."""
    check(jobs)
    order = {j.name: i for i, j in enumerate(jobs)}
    results: dict[str, T] = {}
    pending = sorted(jobs, key=lambda j: (-j.cost, order[j.name]))
    running: dict[Future[T], Job] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while pending or running:
            for job in [j for j in pending if j.needs <= results.keys()]:
                if len(running) >= max(1, workers):
                    break
                pending.remove(job)
                running[pool.submit(execute, job)] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: order[running[f].name]):
                job = running.pop(future)
                results[job.name] = future.result()
                finished(job, results[job.name])
    return results
