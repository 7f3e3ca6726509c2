"""mssr.io: atomic writes leave the old content or the new one, never a temporary file; JSON/JSONL reading;
the cache root."""

from __future__ import annotations

import pytest

from mssr.io import (
    atomic_open,
    cache_root,
    read_json,
    read_jsonl,
    write_dir_atomic,
    write_json_atomic,
    write_jsonl_atomic,
)


def test_json_round_trip_and_no_temporary_left(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_json_atomic(path, {"b": 1, "a": "é", "p": tmp_path})
    write_json_atomic(path, {"b": 2, "a": "é"}, sort_keys=True)
    assert path.read_text(encoding="utf-8") == '{\n  "a": "é",\n  "b": 2\n}\n'
    assert read_json(path) == {"a": "é", "b": 2}
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as fh:
        fh.write("new, half written")
        raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_jsonl(tmp_path):
    path = tmp_path / "r.jsonl"
    write_jsonl_atomic(path, [{"a": 1}, [2]])
    with path.open("a") as fh:
        fh.write("\n{cut sho")
    assert read_jsonl(path, skip_invalid=True) == [{"a": 1}, [2]]
    with pytest.raises(ValueError, match=r"r\.jsonl: line 4 is not valid JSON"):
        read_jsonl(path)


def test_read_json_errors_name_the_file(tmp_path):
    class MyError(Exception):
        pass

    with pytest.raises(MyError, match=r"problems file not found: .*x\.json"):
        read_json(tmp_path / "x.json", error=MyError, what="problems")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(MyError, match=r"problems file .*x\.json is not valid JSON"):
        read_json(tmp_path / "x.json", error=MyError, what="problems")


def _writer(content):
    def write(tmp):
        tmp.mkdir()
        (tmp / "data").write_text(content)
        (tmp / "done").write_text("")
        return content

    return write


def _done(d):
    return (d / "done").is_file()


def test_dir_write_replaces_a_leftover_keeps_a_finished_one(tmp_path):
    final = tmp_path / "run"
    final.mkdir()
    (final / "data").write_text("leftover")  # not complete: replaced
    assert write_dir_atomic(final, _writer("one"), complete=_done) == "one"
    assert (final / "data").read_text() == "one"
    write_dir_atomic(final, _writer("two"), complete=_done)  # complete already: another process won
    assert (final / "data").read_text() == "one"
    write_dir_atomic(final, _writer("three"), complete=_done, force=True)
    assert (final / "data").read_text() == "three"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_dir_write_error_leaves_nothing(tmp_path):
    def fail(tmp):
        tmp.mkdir()
        (tmp / "data").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_dir_atomic(tmp_path / "run", fail, complete=_done)
    assert list(tmp_path.iterdir()) == []


def test_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("MSSR_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("MSSR_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "mssr"
    from mssr.trainer.sft import default_cache_dir

    assert default_cache_dir() == cache_root()
