"""Bad input gives a clear error naming the file, the row/item and the key or image; unknown benchmark names
are refused by name; parquet without pyarrow fails cleanly."""

from __future__ import annotations

import builtins
import json

import pytest

from mssr.evaluation import benchmarks
from mssr.evaluation.benchmarks import BenchmarkDataError, UnknownBenchmarkError, read_rows

from . import layouts


def test_unknown_benchmark_is_named():
    with pytest.raises(UnknownBenchmarkError, match=r"unknown benchmark 'mathvisat'.*mathvista"):
        benchmarks.get("mathvisat")


def test_malformed_json_names_file_and_position(tmp_path):
    d = layouts.logicvista(tmp_path)
    (d / "dataset.json").write_text('{"v1_0": {"question": "q", "answer": "A",}')
    with pytest.raises(BenchmarkDataError, match=r"dataset\.json: malformed JSON .*line 1"):
        benchmarks.get("logicvista").load(d)


def test_malformed_jsonl_line_is_named(tmp_path):
    p = tmp_path / "mmk12" / "test.jsonl"
    p.parent.mkdir()
    p.write_text('{"question": "q", "answer": "A", "image": "a.png"}\n{"question": \n')
    with pytest.raises(BenchmarkDataError, match=r"test\.jsonl: line 2: malformed JSON"):
        benchmarks.get("mmk12").load(p.parent)


def test_missing_key_names_row_and_key(tmp_path):
    d = layouts.hallusionbench(tmp_path)
    rows = json.loads((d / "HallusionBench.json").read_text())
    del rows[2]["gt_answer"]
    (d / "HallusionBench.json").write_text(json.dumps(rows))
    with pytest.raises(BenchmarkDataError, match=r"HallusionBench\.json: row 3: missing key 'gt_answer'"):
        benchmarks.get("hallusionbench").load(d)


def test_bad_value_names_item(tmp_path):
    d = layouts.mathvista(tmp_path)
    data = json.loads((d / "testmini.json").read_text())
    data["1"]["answer"] = "7"  # not one of its choices
    (d / "testmini.json").write_text(json.dumps(data))
    with pytest.raises(BenchmarkDataError, match=r"pid 1\): answer '7' is not one of its choices"):
        benchmarks.get("mathvista").load(d)


def test_missing_image_names_the_file(tmp_path):
    d = layouts.logicvista(tmp_path)
    (d / "images" / "v1_1.png").unlink()
    with pytest.raises(BenchmarkDataError, match=r"1 image file\(s\) .* missing, e\.g\. v1_1: .*v1_1\.png"):
        benchmarks.get("logicvista").load(d)
    data = benchmarks.get("logicvista").load(d, require_images=False)  # metadata-only check
    assert len(data.missing_images) == 1 and len(data) == 4
    item = next(it for it in data.items if it.id == "v1_1")
    with pytest.raises(BenchmarkDataError, match=r"item v1_1\): image file not found: .*v1_1\.png"):
        item.to_record()


def test_broken_image_names_the_item(tmp_path):
    d = layouts.logicvista(tmp_path)
    (d / "images" / "v1_0.png").write_bytes(b"not a png")
    item = benchmarks.get("logicvista").load(d).items[0]
    with pytest.raises(BenchmarkDataError, match=r"item v1_0\): cannot decode image .*v1_0\.png"):
        item.to_record()


def test_missing_data_dir_and_ambiguous_files(tmp_path):
    with pytest.raises(BenchmarkDataError, match="logicvista: none of"):
        benchmarks.get("logicvista").find(tmp_path)
    d = tmp_path / "wemath"
    d.mkdir()
    with pytest.raises(BenchmarkDataError, match="wemath: no data file in"):
        benchmarks.get("wemath").load(d)
    (d / "a.parquet").write_bytes(b"x")
    (d / "b.json").write_text("[]")
    (d / "c.json").write_text("[]")
    with pytest.raises(BenchmarkDataError, match="not a readable parquet file"):
        benchmarks.get("wemath").load(d)


def test_tsv_row_with_wrong_field_count(tmp_path):
    p = tmp_path / "r.tsv"
    p.write_text("index\tquestion\tanswer\n0\tq\tA\n1\tq\n")
    with pytest.raises(BenchmarkDataError, match=r"r\.tsv: row 2 .* has 2 fields, the header has 3"):
        read_rows(p)


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, monkeypatch):
    root = layouts.mmk12(tmp_path, parquet=True)
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(BenchmarkDataError, match="needs pyarrow, which is not installed"):
        benchmarks.get("mmk12").load(root)
    # JSON layouts do not need it
    assert len(benchmarks.get("logicvista").load(layouts.logicvista(tmp_path))) == 4


def test_save_to_disk_arrow_shards_are_read(tmp_path):
    """A ``datasets`` ``save_to_disk`` export: arrow IPC stream shards under ``test/`` (a DatasetDict)."""
    import pyarrow as pa

    from .helpers import png_bytes

    rows = [
        {
            "id": f"a{i}",
            "question": f"Q {i}\nA. x\nB. y",
            "answer": "AB"[i % 2],
            "image": {"bytes": png_bytes(), "path": None},
        }
        for i in range(5)
    ]
    shard_dir = tmp_path / "mmk12" / "test"
    shard_dir.mkdir(parents=True)
    for k, part in enumerate((rows[:3], rows[3:])):
        table = pa.Table.from_pylist(part)
        with (
            pa.OSFile(str(shard_dir / f"data-0000{k}-of-00002.arrow"), "wb") as sink,
            pa.ipc.new_stream(sink, table.schema) as writer,
        ):
            writer.write_table(table)
    (tmp_path / "mmk12" / "dataset_dict.json").write_text('{"splits": ["test"]}')
    data = benchmarks.get("mmk12").load(tmp_path / "mmk12")
    assert [it.id for it in data.items] == [f"a{i}" for i in range(5)]
    assert [it.answer for it in data.items] == ["A", "B", "A", "B", "A"] and data.items[0].choices == [
        "x",
        "y",
    ]
    assert data.items[4].to_record().images[0].size == (24, 16)


def test_an_empty_benchmark_file_is_an_error_not_a_zero(tmp_path):
    p = tmp_path / "mmk12" / "test.jsonl"
    p.parent.mkdir()
    p.write_text("")
    with pytest.raises(BenchmarkDataError, match=r"mmk12: .*test\.jsonl holds no items"):
        benchmarks.get("mmk12").load(p.parent)
