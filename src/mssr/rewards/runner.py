"""Run many small, untrusted computations (reward calls, verifications) with a deadline per item.

Two backends, both persistent (created once, reused by every call):

* :class:`ProcessRunner` — a pool of worker processes (``forkserver`` start method where available, so a
  trainer's threads and CUDA state are never forked). An item that overruns its deadline gets its worker
  killed (SIGKILL) and replaced; the timeout is a *hard* guarantee, also for hangs inside C code (a sympy
  bignum power). A worker that dies is replaced and its item counted as an error.
  Workers die with their parent (:func:`die_with_parent`): none is left running after the parent is killed.
* :class:`InlineRunner` — the calling process, for ``num_workers=0``. Items run one by one on a persistent
  daemon thread; the caller waits with a deadline, so it works from any thread (no ``signal.alarm``). On a
  deadline the runner raises :class:`ItemTimeout` inside the worker thread (``PyThreadState_SetAsyncExc``),
  which interrupts pure-Python loops (sympy, regexes compiled by Python code) within a bytecode. A hang inside a
  single C call cannot be interrupted in-process: the caller still gets its timeout on time, the stuck thread
  is abandoned (it finishes in the background) and a fresh thread serves the next items. Use processes when
  inputs may trigger C-level hangs; mssr's own verifier refuses such inputs up front.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any


class ItemTimeout(BaseException):
    """Raised asynchronously inside an inline worker thread when its item overruns the deadline."""


@dataclass(frozen=True)
class Outcome:
    """Result of one item: ``value`` if ``error`` is None and not ``timed_out``."""

    value: Any = None
    error: str | None = None
    timed_out: bool = False
    traceback: str | None = None  # of ``error``, where it was an exception


def _describe(exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}"
    return msg if len(msg) <= 500 else msg[:497] + "..."


# ------------------------------------------------------------------------------------------------ inline
class _Task:
    __slots__ = ("args", "done", "error", "fn", "tb", "value")

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn, self.args = fn, args
        self.value: Any = None
        self.error: str | None = None
        self.tb: str | None = None
        self.done = threading.Event()


def _set_async_exc(thread: threading.Thread, exc: type[BaseException] | None) -> None:
    tid = thread.ident
    if tid is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(exc) if exc else None)


class InlineRunner:
    """Per-item deadlines in the calling process, safe to call from any thread (see module docstring)."""

    def __init__(self, grace_s: float = 0.25) -> None:
        self.grace_s = grace_s
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Task | None] | None = None
        self._thread: threading.Thread | None = None
        self.abandoned_threads = 0

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(
                target=self._loop, args=(self._queue,), name="mssr-reward-inline", daemon=True
            )
            self._thread.start()

    @staticmethod
    def _loop(q: queue.SimpleQueue) -> None:
        while True:
            try:
                task = q.get()
                if task is None:
                    return
                try:
                    task.value = task.fn(*task.args)
                except ItemTimeout:
                    task.error = "timeout"
                except BaseException as exc:
                    task.error = _describe(exc)
                    task.tb = traceback.format_exc()
                finally:
                    task.done.set()
            except ItemTimeout:  # a late asynchronous timeout landing between tasks: ignore it
                continue

    def run(self, fn: Callable[..., Any], items: Sequence[tuple], timeout_s: float) -> list[Outcome]:
        """Call ``fn(*args)`` for each ``args`` in ``items``, each with ``timeout_s`` seconds."""
        out: list[Outcome] = []
        with self._lock:
            for args in items:
                self._ensure_thread()
                assert self._queue is not None and self._thread is not None
                task = _Task(fn, args)
                self._queue.put(task)
                if task.done.wait(timeout_s):
                    out.append(
                        Outcome(error=task.error, traceback=task.tb)
                        if task.error
                        else Outcome(value=task.value)
                    )
                    continue
                thread = self._thread
                _set_async_exc(thread, ItemTimeout)
                if task.done.wait(self.grace_s):
                    _set_async_exc(thread, None)  # drop the exception if it is still pending
                else:  # stuck in C code: abandon the thread, serve the next items from a new one
                    self._queue.put(None)
                    self._thread = None
                    self.abandoned_threads += 1
                out.append(Outcome(timed_out=True))
        return out


# ------------------------------------------------------------------------------------------------ processes
# signals a terminal or a scheduler sends to the whole process group: the parent decides (checkpoint and stop,
# then close the pool); a worker that died of them would break the step in progress
SHIELDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGHUP")


def die_with_parent() -> None:
    """Linux: the kernel SIGKILLs this process when its parent exits (``prctl(PR_SET_PDEATHSIG)``), even while it
    is stuck in C code holding the GIL. A worker's parent is the forkserver, which dies with the trainer or
    ``mssr grade`` however it ends (SIGTERM, SIGKILL, a crash; :mod:`mssr.rewards.forkserver_guard`); under
    ``spawn`` the parent is that process itself."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the prctl took effect
        os._exit(0)


def _worker_main(conn: Connection) -> None:
    """Worker loop: ("fn", key, payload) registers a callable; ("task", id, key, args) runs it. Replies are
    (id, True, value) or (id, False, message, traceback)."""
    die_with_parent()
    for name in SHIELDED_SIGNALS:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    fns: dict[int, Callable[..., Any]] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "stop":
            return
        if msg[0] == "fn":
            _, key, payload = msg
            try:
                fns[key] = pickle.loads(payload)
            except BaseException as exc:
                fns[key] = _Broken(f"could not unpickle the function in the worker: {_describe(exc)}")
            continue
        _, task_id, key, args = msg
        try:
            value = fns[key](*args)
            reply = (task_id, True, value)
        except BaseException as exc:
            reply = (task_id, False, _describe(exc), traceback.format_exc())
        try:
            conn.send(reply)
        except Exception as exc:  # unpicklable return value
            conn.send((task_id, False, f"result could not be sent back: {_describe(exc)}", None))


class _Broken:
    def __init__(self, msg: str) -> None:
        self.msg = msg

    def __call__(self, *args: Any) -> Any:
        raise RuntimeError(self.msg)


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    known: set[int]
    task: int | None = None
    deadline: float = 0.0


def default_start_method() -> str:
    methods = mp.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


class ProcessRunner:
    """A persistent pool of worker processes with a hard per-item deadline (see module docstring)."""

    def __init__(
        self, num_workers: int, start_method: str | None = None, preload: Sequence[str] = ()
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self.num_workers = num_workers
        self.start_method = start_method or default_start_method()
        self._ctx = mp.get_context(self.start_method)
        if self.start_method == "forkserver":  # the guard first: the forkserver dies with its starter
            self._ctx.set_forkserver_preload(["mssr.rewards.forkserver_guard", *preload])
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._fn_keys: dict[int, tuple[Any, bytes]] = {}
        self.restarts = 0

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker_main, args=(child,), name="mssr-reward-worker", daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent, set())

    def _kill(self, w: _Worker) -> None:
        try:
            w.proc.kill()
            w.proc.join(timeout=5)
        finally:
            w.conn.close()

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                with contextlib.suppress(Exception):
                    w.conn.send(("stop",))
            for w in self._workers:
                w.proc.join(timeout=1)
                if w.proc.is_alive():
                    w.proc.kill()
                    w.proc.join(timeout=1)
                w.conn.close()
            self._workers = []

    def run(self, fn: Callable[..., Any], items: Sequence[tuple], timeout_s: float) -> list[Outcome]:
        """Call ``fn(*args)`` for each ``args`` in ``items`` on the pool. ``fn`` must be picklable."""
        payload = pickle.dumps(fn)
        key = hash(payload)
        with self._lock:
            while len(self._workers) < self.num_workers:
                self._workers.append(self._spawn())
            results: list[Outcome | None] = [None] * len(items)
            next_item = 0
            busy: dict[Connection, _Worker] = {}

            def dispatch(w: _Worker) -> None:
                nonlocal next_item
                if key not in w.known:
                    w.conn.send(("fn", key, payload))
                    w.known.add(key)
                w.task = next_item
                w.conn.send(("task", next_item, key, items[next_item]))
                w.deadline = time.monotonic() + timeout_s
                busy[w.conn] = w
                next_item += 1

            def replace(w: _Worker) -> None:
                busy.pop(w.conn, None)
                self._kill(w)
                self._workers[self._workers.index(w)] = new = self._spawn()
                self.restarts += 1
                if next_item < len(items):
                    dispatch(new)

            for w in self._workers:
                if next_item < len(items):
                    dispatch(w)
            while busy:
                now = time.monotonic()
                soonest = min(w.deadline for w in busy.values())
                ready = wait(list(busy), timeout=max(0.0, soonest - now))
                for conn in ready:
                    w = busy[conn]
                    try:
                        task_id, ok, value, *tb = conn.recv()
                    except (EOFError, OSError):
                        code = w.proc.exitcode
                        w.proc.join(timeout=1)
                        results[w.task] = Outcome(
                            error=f"worker process died (exit code {w.proc.exitcode or code})"
                        )
                        replace(w)
                        continue
                    results[task_id] = (
                        Outcome(value=value) if ok else Outcome(error=value, traceback=tb[0] if tb else None)
                    )
                    busy.pop(conn)
                    w.task = None
                    if next_item < len(items):
                        dispatch(w)
                now = time.monotonic()
                for w in [w for w in busy.values() if w.deadline <= now]:
                    results[w.task] = Outcome(timed_out=True)
                    replace(w)
            return [r if r is not None else Outcome(error="lost") for r in results]


# ------------------------------------------------------------------------------------------------ shared pools
_POOLS: dict[tuple[int, str], ProcessRunner] = {}
_INLINE = InlineRunner()
_POOLS_LOCK = threading.Lock()
_PRELOAD = ("mssr.rewards.verify", "mssr.rewards.builtin", "math_verify", "sympy")


def get_runner(num_workers: int) -> InlineRunner | ProcessRunner:
    """The shared runner for ``num_workers`` (0: in-process). Pools persist until interpreter exit."""
    if num_workers <= 0:
        return _INLINE
    method = os.environ.get("MSSR_REWARD_START_METHOD") or default_start_method()
    with _POOLS_LOCK:
        runner = _POOLS.get((num_workers, method))
        if runner is None:
            runner = _POOLS[(num_workers, method)] = ProcessRunner(num_workers, method, preload=_PRELOAD)
        return runner


@atexit.register
def shutdown_pools() -> None:
    """Stop every shared worker pool (also registered at exit)."""
    with _POOLS_LOCK:
        for runner in _POOLS.values():
            runner.close()
        _POOLS.clear()


def is_picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
        return True
    except Exception:
        return False
