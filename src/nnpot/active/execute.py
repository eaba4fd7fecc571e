"""Run an oracle over many structures on any ``concurrent.futures.Executor``.

The default is a local process pool (``forkserver`` start method on POSIX, so workers do
not inherit the parent's OpenMP/torch thread state). For a cluster pass a
``dask.distributed`` executor::

    from dask.distributed import Client, LocalCluster   # or dask_jobqueue.SLURMCluster
    client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True))
    records = label_many(XTBOracle(), frames, executor=client.get_executor(pure=False))

Time limits [s] are enforced twice: inside the worker with ``SIGALRM`` where the task runs
in a process's main thread (process pools; Python-level SCF loops notice it at once), and
by the caller at ``timeout + timeout_grace`` for anything that cannot be interrupted
(dask threads, long compiled calls). A structure that timed out on a pool this function
created has that pool's workers killed and replaced; on a user's executor the abandoned
task keeps its worker slot until it ends (later structures are not sent to wait behind
it; if every slot is so held, this function waits) and is cancelled when it returns. Clocks
start at submission; at most ``max_workers`` structures are in flight at a time (set it
to the executor's number of worker slots), so submission is start.

Failures (``ok=False`` records, exceptions from the executor, timeouts, a crashed worker)
are retried up to ``max_retries`` times, so a structure is tried at most
``1 + max_retries`` times; ``LabelRecord.attempts`` says how many. When a worker of the
default pool dies (a segfaulting code), the structures that were in flight are rerun one
at a time before any attempt is charged, so only the culprit is charged. Results come back in
input order; ``on_result(index, record)`` is called in the caller's process as each final
record arrives (for storing labels the moment they exist).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool

from ase import Atoms

from nnpot.active.oracle import LabelRecord, Oracle, OracleTimeout, structure_hash
from nnpot.errors import InputError

__all__ = ["default_executor", "label_many"]


def default_executor(max_workers: int | None = None) -> ProcessPoolExecutor:
    """A local process pool (forkserver where available) with ``max_workers`` workers.

    As with any non-fork pool, a script that uses it needs the ``if __name__ ==
    "__main__":`` guard.
    """
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["nnpot.active.execute"])
    return ProcessPoolExecutor(max_workers=max_workers or os.cpu_count() or 1, mp_context=ctx)


def _raise_timeout(signum, frame):  # pragma: no cover - runs in workers
    raise OracleTimeout("timed out")


def _label_task(oracle: Oracle, atoms: Atoms, timeout: float | None) -> LabelRecord:
    """Worker side: label one structure under a SIGALRM time limit where possible."""
    use_alarm = (
        timeout is not None
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not use_alarm:
        return oracle.label(atoms)
    old = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, float(timeout))
    try:
        record = oracle.label(atoms)
    except OracleTimeout:  # fired outside the oracle's own try block
        record = _failed(oracle, atoms, "timed out")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, old)
    if not record.ok and record.reason and record.reason.startswith("OracleTimeout"):
        record.reason = f"timed out after {timeout:g} s"
    return record


def _failed(oracle: Oracle, atoms: Atoms, reason: str, wall_time: float = 0.0) -> LabelRecord:
    try:
        settings = oracle.settings()
    except Exception:  # noqa: BLE001
        settings = {}
    return LabelRecord(
        structure_hash=structure_hash(atoms), ok=False, reason=reason, wall_time=wall_time,
        oracle=getattr(oracle, "name", type(oracle).__name__), settings=settings,
    )


def _workers_of(executor: Executor) -> int:
    n = getattr(executor, "_max_workers", None)
    if n:
        return int(n)
    client = getattr(executor, "_client", None)  # dask.distributed ClientExecutor
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001
            pass
    return os.cpu_count() or 1


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Kill the worker processes of a pool we created (abandoned, hung tasks)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.kill()
        except Exception:  # noqa: BLE001
            pass
    pool.shutdown(wait=True, cancel_futures=True)


def label_many(
    oracle: Oracle,
    atoms_list: Sequence[Atoms],
    executor: Executor | None = None,
    timeout: float | None = None,
    max_retries: int = 1,
    *,
    max_workers: int | None = None,
    timeout_grace: float = 5.0,
    on_result: Callable[[int, LabelRecord], None] | None = None,
) -> list[LabelRecord]:
    """Label every structure of ``atoms_list`` with ``oracle``; records in input order.

    ``executor``: any ``concurrent.futures.Executor`` (default: a local process pool of
    ``max_workers`` workers, shut down at the end). ``timeout`` [s] per structure and
    attempt; ``max_retries``: extra attempts after a failure (each structure is tried at
    most ``1 + max_retries`` times). ``max_workers`` also bounds how many structures are
    in flight on a user's executor (default: its worker count). Never raises for a failed
    structure; raises :class:`~nnpot.errors.InputError` for bad arguments or an oracle that
    cannot be sent to worker processes.
    """
    if max_retries < 0:
        raise InputError(f"max_retries must be >= 0, got {max_retries}")
    if timeout is not None and not timeout > 0:
        raise InputError(f"timeout must be a positive number of seconds, got {timeout}")
    atoms_list = list(atoms_list)
    if not atoms_list:
        return []
    if not isinstance(executor, ThreadPoolExecutor):
        try:
            pickle.dumps(oracle)
        except Exception as exc:  # noqa: BLE001
            raise InputError(
                f"oracle {oracle!r} cannot be pickled ({exc}), so it cannot run in worker "
                "processes; keep only plain settings on the oracle or use a ThreadPoolExecutor"
            ) from None
    own = executor is None
    pool: Executor = default_executor(max_workers) if own else executor  # type: ignore[assignment]
    cap = max(1, int(max_workers) if max_workers else _workers_of(pool))
    hard_limit = None if timeout is None else timeout + timeout_grace

    # queue entries: (index, attempt, solo); a "solo" entry runs alone on the pool, so
    # that a worker crash during it is attributable to that structure
    pending: deque[tuple[int, int, bool]] = deque((i, 1, False) for i in range(len(atoms_list)))
    in_flight: dict[Future, tuple[int, int, float, bool]] = {}
    results: list[LabelRecord | None] = [None] * len(atoms_list)
    # timed-out tasks on a user's executor keep their worker busy until they end; they
    # hold a slot so that later structures' clocks do not include waiting for it
    abandoned: set[Future] = set()

    def finish(i: int, attempt: int, record: LabelRecord) -> None:
        record.attempts = attempt
        if not record.ok and attempt <= max_retries:
            pending.append((i, attempt + 1, False))
            return
        results[i] = record
        if on_result is not None:
            on_result(i, record)

    def fail(i: int, attempt: int, reason: str, t0: float) -> None:
        finish(i, attempt, _failed(oracle, atoms_list[i], reason, time.monotonic() - t0))

    try:
        while pending or in_flight:
            abandoned = {f for f in abandoned if not f.done()}
            free = cap - len(abandoned)
            while pending and len(in_flight) < free:
                if any(solo for *_, solo in in_flight.values()):
                    break
                i, attempt, solo = pending[0]
                if solo and in_flight:
                    break  # wait for the pool to drain, then run the suspect alone
                pending.popleft()
                fut = pool.submit(_label_task, oracle, atoms_list[i], timeout)
                in_flight[fut] = (i, attempt, time.monotonic(), solo)
            wait_s = None
            if hard_limit is not None and in_flight:
                oldest = min(t for _, _, t, _ in in_flight.values())
                wait_s = max(0.0, oldest + hard_limit - time.monotonic())
            watch = list(in_flight) + (list(abandoned) if pending else [])
            done, _ = wait(watch, timeout=wait_s, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                if fut not in in_flight:
                    continue
                i, attempt, t0, solo = in_flight.pop(fut)
                try:
                    record = fut.result()
                except BrokenProcessPool as exc:
                    broken = True
                    if own and not solo:  # not attributable yet: rerun alone, no charge
                        pending.appendleft((i, attempt, True))
                    else:
                        fail(i, attempt, f"worker process died: {exc}", t0)
                    continue
                except Exception as exc:  # noqa: BLE001 - executor-side failures
                    fail(i, attempt, f"executor error: {type(exc).__name__}: {exc}", t0)
                    continue
                finish(i, attempt, record)
            expired = []
            if hard_limit is not None:
                now = time.monotonic()
                expired = [f for f, (_, _, t0, _) in in_flight.items() if now - t0 >= hard_limit]
            for fut in expired:
                i, attempt, t0, _ = in_flight.pop(fut)
                if not own:
                    abandoned.add(fut)
                fail(i, attempt, f"timed out after {timeout:g} s (not interruptible)", t0)
            if own and (broken or expired):
                # hung or dead workers: replace the pool; innocent in-flight work is redone
                for i, attempt, _, solo in list(in_flight.values()):
                    pending.appendleft((i, attempt, solo or broken))
                in_flight.clear()
                _kill_pool(pool)  # type: ignore[arg-type]
                pool = default_executor(cap)
    finally:
        for fut in abandoned:
            fut.cancel()
        if own:
            if in_flight:
                _kill_pool(pool)  # type: ignore[arg-type]
            else:
                pool.shutdown(wait=True)
    return results  # type: ignore[return-value]
