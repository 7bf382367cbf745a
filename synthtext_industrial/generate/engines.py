"""The two engines that render and write the planned shards: a local process pool, or Dask.

`local`: worker processes render samples and this process writes the shards, in index order. `dask`: one
task per shard on a dask.distributed cluster; the task renders and writes its shard into OUT, which must be
a folder (or URL) every worker can reach.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator

from ..recipe import Recipe
from ..store.format import DatasetError
from ..store.shards import Record
from . import faults, writer
from .writer import ShardPlan

ENGINES = ("local", "dask")
POOL_RESTARTS = 3  # render pools replaced after a worker process died, per run


_WORKER: dict = {}


def _init_worker(recipe: Recipe, seed: int, with_crops: bool) -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _exit_with_parent()
    _WORKER.update(recipe=recipe, seed=seed, with_crops=with_crops)


def _exit_with_parent() -> None:
    """End this worker when the generate process dies (SIGKILL, OOM killer): else it waits forever on its queue."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent's sentinel closes, i.e. when it is gone
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _render_in_worker(index: int) -> Record:
    faults.fault("render")
    return writer.render_record(_WORKER["recipe"], _WORKER["seed"], index, _WORKER["with_crops"])


def _records(recipe: Recipe, seed: int, indices: list[int], with_crops: bool, workers: int) -> Iterator[Record]:
    """Rendered records in index order, from `workers` processes.

    At most a few samples per worker are in flight, so memory stays flat however large N is.
    A worker that dies (killed, out of memory) breaks the pool: a new pool renders what was
    in flight, up to POOL_RESTARTS times, then the run stops with a DatasetError.
    """
    if workers <= 1 or len(indices) <= 1:
        faults.fault("rendering")
        for i in indices:
            yield writer.render_record(recipe, seed, i, with_crops)
        return
    ctx = mp.get_context("spawn" if os.name != "posix" else "forkserver")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(recipe, seed, with_crops))

    pool, restarts, todo, pending = new_pool(), 0, iter(indices), deque()
    try:
        while True:
            while len(pending) < 4 * workers:
                i = next(todo, None)
                if i is None:
                    break
                pending.append((i, pool.submit(_render_in_worker, i)))
            if not pending:
                return
            if restarts == 0 and pending[0][0] == indices[0]:
                faults.fault("rendering")  # once: the first samples are asked for, the workers start up
            try:
                record = pending[0][1].result()
            except BrokenProcessPool:
                restarts += 1
                if restarts > POOL_RESTARTS:
                    raise DatasetError(f"render worker processes died {restarts} times (killed, or out of memory?) "
                                       f"while rendering sample {pending[0][0]}; finished shards are kept, rerun "
                                       f"the same command to resume (perhaps with fewer --workers)") from None
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
                pending = deque((i, pool.submit(_render_in_worker, i)) for i, _ in pending)
                continue
            pending.popleft()
            yield record
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_local(job: dict, todo: list[ShardPlan], workers: int, progress, on_shard) -> None:
    indices = [i for plan in todo for i in range(plan.start, plan.stop)]
    records = _records(job["recipe"], job["seed"], indices, job["with_crops"], workers)
    try:
        for plan in todo:
            batch = (next(records) for _ in range(plan.start, plan.stop))
            on_shard(writer.write_job_shard(job, plan, batch, progress))
    finally:
        records.close()


def dask_shard_task(job: dict, plan: ShardPlan) -> list[dict]:
    """One Dask task: render and write one shard (runs on a worker; OUT or the URL must be reachable there)."""
    import cv2

    cv2.setNumThreads(1)
    faults.fault("render")
    records = (writer.render_record(job["recipe"], job["seed"], i, job["with_crops"]) for i in range(plan.start, plan.stop))
    return writer.write_job_shard(job, plan, records)


def run_dask(job: dict, todo: list[ShardPlan], workers: int, scheduler: str | None, progress, on_shard) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise DatasetError("--engine dask needs dask.distributed: pip install 'synthtext-industrial[dask]'") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            tag = job["recipe"].sha256[:12]
            futures = {client.submit(dask_shard_task, job, plan, key=f"synthtext-{tag}-{job['seed']}-{plan.name}",
                                     retries=2): plan for plan in todo}
            try:
                for future in as_completed(futures):
                    try:
                        entries = future.result()
                    except Exception as exc:
                        if type(exc).__name__ != "KilledWorker":
                            raise
                        import dask

                        tries = dask.config.get("distributed.scheduler.allowed-failures", 3) + 1
                        raise DatasetError(f"Dask workers died {tries} times running "
                                           f"{futures[future].name} (killed, or out of memory?); finished shards "
                                           f"are kept, rerun the same command to resume") from None
                    on_shard(entries)
                    if progress:
                        progress(futures[future].stop - futures[future].start)
            except BaseException:
                client.cancel(list(futures))
                raise
    except OSError as exc:
        raise DatasetError(f"could not reach the Dask scheduler {scheduler}: {exc}") from None
    finally:
        if cluster is not None:
            cluster.close()
