"""Small file helpers shared by every layer: atomic writes, JSON / JSONL reading, and the cache root.

*Atomic* means a reader sees the old content or the new one, never a half-written file or directory: the
content goes to a temporary sibling (``.<name>.tmp-<pid>`` for a file, ``.tmp-<name>-<pid>`` for a
directory), is flushed and fsynced, then renamed into place; the parent directory is fsynced so that the rename
itself survives a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

CACHE_ENV = "MSSR_CACHE"

T = TypeVar("T")


def cache_root() -> Path:
    """The cache root: ``$MSSR_CACHE`` if set, else ``~/.cache/mssr`` (built-in datasets under ``data/``, SFT
    bases under ``sft/``)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mssr"


# ------------------------------------------------------------------------------------------------ fsync
def fsync_dir(path: str | Path) -> None:
    """fsync a directory (its entries: names created, renamed or removed). A no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(path: str | Path) -> None:
    """fsync every file and directory under ``path`` (files first, then their directories)."""
    for root, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(root)


# ------------------------------------------------------------------------------------------------ files
@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[IO[str]]:
    """Open a UTF-8 text file for writing that replaces ``path`` atomically when the block ends without error;
    on error ``path`` is left as it was and the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_open(path) as fh:
        fh.write(text)


def write_json_atomic(path: str | Path, data: Any, *, sort_keys: bool = False) -> None:
    """Replace ``path`` with ``data`` as indented JSON (UTF-8, non-JSON values via ``str``) atomically."""
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=sort_keys, default=str)
    write_text_atomic(path, text + "\n")


def write_jsonl_atomic(path: str | Path, rows: Iterable[Any]) -> None:
    """Replace ``path`` with one JSON value per line atomically."""
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------------- directories
def write_dir_atomic(
    final: str | Path,
    write: Callable[[Path], T],
    *,
    complete: Callable[[Path], bool],
    force: bool = False,
) -> T:
    """Build a directory with ``write(tmp)`` in a temporary sibling ``.tmp-<name>-<pid>``, fsync it, and
    rename it to ``final``; return what ``write`` returned.

    ``complete(dir)`` tells a finished directory from a leftover. Before the rename, an existing ``final`` is
    removed when it is not complete (or with ``force``). If the rename fails because another process put a
    complete ``final`` in place meanwhile, theirs is kept and ours deleted. On error the temporary directory
    is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        result = write(tmp)
        fsync_tree(tmp)
        if final.exists() and (force or not complete(final)):
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if not complete(final):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same work first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(final.parent)
    return result


# ------------------------------------------------------------------------------------------------ reading
def read_json(path: str | Path, *, error: type[Exception] = ValueError, what: str = "JSON") -> Any:
    """Parse a JSON file (UTF-8; undecodable bytes replaced). A missing file or invalid JSON raises ``error``
    with a message naming the file (``what`` says which file it is, e.g. ``"problems"``)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_bytes().decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        raise error(f"{what} file {path} is not valid JSON: {exc}") from None


def read_jsonl(path: str | Path, *, skip_invalid: bool = False) -> list[Any]:
    """The JSON values of a JSONL file, one per non-blank line. An invalid line raises ``ValueError`` naming
    the file and line, or is skipped with ``skip_invalid`` (e.g. a log whose last line a crash cut short)."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if not skip_invalid:
                    raise ValueError(f"{path}: line {lineno} is not valid JSON ({exc})") from None
    return rows


# ------------------------------------------------------------------------------------------------ run lock
LOCK_NAME = ".mssr.lock"


class DirectoryLocked(RuntimeError):
    """The directory belongs to another live process (the message names it)."""


def pid_alive(pid: int) -> bool:
    """Is process ``pid`` alive on this host (one owned by another user counts as alive)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive lock on a directory for the life of one run (``mssr train``, ``mssr eval``).

    The lock file (``<dir>/.mssr.lock`` unless ``path`` says otherwise) holds the owner's pid, host, start
    time and command. It is held with ``flock`` where the file system supports it, so the kernel releases it
    when the owner dies however it dies; the file left behind by a dead owner is stale and taken over. Where
    ``flock`` is unavailable (some network file systems) the pid/host in the file decide: a lock of this host
    whose pid is gone is stale; one of another host is respected. ``release`` (or leaving the ``with`` block)
    removes the file.
    """

    def __init__(self, directory: str | Path, *, what: str = "a run", path: str | Path | None = None) -> None:
        self.directory = Path(directory)
        self.path = Path(path) if path is not None else self.directory / LOCK_NAME
        self.what = what
        self._fd: int | None = None
        self.stale: dict[str, Any] | None = None  # the dead owner whose lock was taken over, if any

    def holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def describe(h: dict[str, Any] | None) -> str:
        if not h:
            return "another process"
        return f"{h.get('what', 'a run')} (pid {h.get('pid')} on {h.get('host')}, since {h.get('started')})"

    def acquire(self) -> RunLock:
        import fcntl
        import socket
        import sys
        import time

        self.path.parent.mkdir(parents=True, exist_ok=True)
        host = socket.gethostname()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            flocked = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DirectoryLocked(
                    f"{self.directory} is in use by {self.describe(self.holder())}; wait for it, stop it, or "
                    "choose another directory"
                ) from None
            except OSError:  # no flock here: the pid/host in the file decide
                flocked = False
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the owner released (unlinked) it between our open and flock: try again
                os.close(fd)
                continue
            h = self.holder()
            theirs = bool(h) and h.get("pid") != os.getpid()
            if theirs and not flocked and (h.get("host") != host or pid_alive(int(h.get("pid") or 0))):
                os.close(fd)
                raise DirectoryLocked(f"{self.directory} is in use by {self.describe(h)}")
            self.stale = h if h and h.get("pid") != os.getpid() else None
            info = {
                "what": self.what,
                "pid": os.getpid(),
                "host": host,
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "argv": sys.argv,
            }
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(info) + "\n").encode())
            os.fsync(fd)
            self._fd = fd
            return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
