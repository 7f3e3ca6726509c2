"""Datasets as users have them: save_to_disk directories, in-memory datasets.Dataset / lists of dicts, hub ids
(offline here: cache only, one-line error), EasyR1's and TRL's column names, column mapping, bad rows counted,
and `mssr data inspect`. The fixture is the built-in task written by `mssr data`'s generator, converted with
datasets.Dataset.from_list(...).save_to_disk(...)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from mssr.data import Columns, DataError, load_records, load_source, resolve_source
from mssr.data.sources import has_split, offline_reason, split_names, without_split

datasets = pytest.importorskip("datasets")


def png(colour=(255, 0, 0), size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def easyr1_rows(data_dir: Path, split: str) -> list[dict]:
    """The built-in split as EasyR1 stores a dataset: problem / answer / images as {"bytes", "path"} dicts."""
    rows = []
    for line in (data_dir / f"{split}.jsonl").read_text().splitlines():
        r = json.loads(line)
        rows.append(
            {
                "problem": r["problem"],
                "answer": r["answer"],
                "images": [{"bytes": (data_dir / p).read_bytes(), "path": None} for p in r["images"]],
                "choices": r["choices"],
                "id": r["id"],
            }
        )
    return rows


@pytest.fixture(scope="module")
def easyr1_dir(tiny_data_dir, tmp_path_factory) -> Path:
    """A DatasetDict (train / validation) written with save_to_disk from the built-in task."""
    out = tmp_path_factory.mktemp("hf") / "easyr1"
    features = datasets.Features(  # as EasyR1's hub datasets declare them: images an Image feature list
        problem=datasets.Value("string"),
        answer=datasets.Value("string"),
        images=datasets.List(datasets.Image()),
        choices=datasets.List(datasets.Value("string")),
        id=datasets.Value("string"),
    )
    datasets.DatasetDict(
        train=datasets.Dataset.from_list(easyr1_rows(tiny_data_dir, "train"), features=features),
        validation=datasets.Dataset.from_list(easyr1_rows(tiny_data_dir, "val"), features=features),
    ).save_to_disk(str(out))
    return out


def same_records(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.id, x.question, x.answer, x.answer_type, x.choices) == (
            y.id,
            y.question,
            y.answer,
            y.answer_type,
            y.choices,
        )
        assert [im.tobytes() for im in x.images] == [im.tobytes() for im in y.images]


def test_resolve_source_kinds(tmp_path, easyr1_dir):
    (tmp_path / "train.jsonl").write_text("")
    assert resolve_source(tmp_path).kind == "files"
    assert resolve_source(tmp_path / "train.jsonl").kind == "file"
    assert resolve_source(f"{tmp_path}@val").split == "val"
    src = resolve_source(f"{easyr1_dir}@train")
    assert (src.kind, src.path, src.split) == ("disk", easyr1_dir, "train")
    hub = resolve_source("hiyouga/geometry3k@train")
    assert (hub.kind, hub.name, hub.split) == ("hub", "hiyouga/geometry3k", "train")
    assert resolve_source("hf://datasets/owner/name").name == "owner/name"
    assert resolve_source([{"problem": "q", "answer": "1"}]).kind == "memory"
    for missing in ("./nope.jsonl", "/abs/missing", "owner/name.jsonl"):
        with pytest.raises(DataError, match="no such dataset file or directory"):
            resolve_source(missing)
    assert split_names(easyr1_dir) == ["train", "validation"]
    assert has_split(easyr1_dir, "val") and not has_split(easyr1_dir, "test")
    assert not has_split("hiyouga/geometry3k", "val")  # unknown without the hub: no guessed val split
    assert without_split(f"{easyr1_dir}@train") == str(easyr1_dir)
    assert without_split("owner/name@test") == "owner/name" and without_split("owner/name") == "owner/name"


def test_trainer_derives_val_beside_a_split_named_train(easyr1_dir, tiny_data_dir):
    from mssr.config import load_config
    from mssr.trainer.config import TrainConfig
    from mssr.trainer.setup import build_data

    cfg = load_config(TrainConfig, None, [f"data.train={easyr1_dir}@train"])
    train, val = build_data(cfg)
    assert (len(train), len(val)) == (24, 4) and val[0].id == load_records(tiny_data_dir, "val")[0].id


def test_save_to_disk_reads_like_the_jsonl(tiny_data_dir, easyr1_dir, tmp_path):
    for split in ("train", "val"):
        same_records(load_source(easyr1_dir, split), load_records(tiny_data_dir, split))
    same_records(load_source(f"{easyr1_dir}@validation"), load_records(tiny_data_dir, "val"))
    single = tmp_path / "single"
    datasets.Dataset.from_list(easyr1_rows(tiny_data_dir, "val")).save_to_disk(str(single))
    same_records(load_source(single, "train"), load_records(tiny_data_dir, "val"))  # one Dataset: the split
    assert len(load_source(easyr1_dir, "train", limit=5)) == 5
    with pytest.raises(DataError, match=r"no split 'test'; it holds \['train', 'validation'\]"):
        load_source(easyr1_dir, "test")


def test_in_memory_dataset_and_lists_with_trl_and_easyr1_names():
    red, blue = Image.new("RGB", (10, 8), "red"), png((0, 0, 255))
    trl = datasets.Dataset.from_list(
        [
            {
                "prompt": [
                    {"role": "system", "content": [{"type": "text", "text": "Think."}]},
                    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]},
                ],
                "image": red,
                "solution": "<think>it is red</think> \\boxed{red}",
            },
            {
                "prompt": [
                    {"role": "user", "content": [{"type": "text", "text": "How much is \\frac{1}{2}?"}]}
                ],
                "image": red,
                "solution": "<answer>\\frac{1}{2}</answer>",
            },
        ]
    )
    recs = load_source(trl)
    assert [(r.question, r.answer, len(r.images)) for r in recs] == [
        ("Colour?", "red", 1),
        ("How much is \\frac{1}{2}?", "\\frac{1}{2}", 1),
    ]
    assert recs[0].extra["answer_raw"].startswith("<think>") and recs[0].images[0].size == (10, 8)
    rows = [
        {
            "problem": "<image>Which?",
            "answer": "B",
            "images": [{"bytes": blue, "path": None}],
            "choices": ["x", "y"],
        },
        {"problem": "<image>Sum?", "answer": 7, "images": [red]},
    ]
    a, b = load_source(rows)
    assert (a.answer, a.answer_type, a.choices, a.images[0].getpixel((0, 0))) == (
        "B",
        "choice",
        ["x", "y"],
        (0, 0, 255),
    )
    assert (b.answer, b.answer_type) == ("7", "integer")
    split_dict = load_source({"train": rows, "validation": rows[:1]}, "val")
    assert len(split_dict) == 1


def test_column_mapping_by_config_and_class_labels():
    ds = datasets.Dataset.from_list(
        [
            {
                "q": "<image>Count?",
                "a": "3",
                "pic": {"bytes": png(), "path": None},
                "opts": None,
                "answer": "no",
            }
        ]
    )
    cols = Columns.with_keys(prompt_key="q", answer_key="a", image_key="pic", choices_key="opts")
    (r,) = load_source(ds, columns=cols)
    assert (r.question, r.answer, len(r.images), r.extra) == ("Count?", "3", 1, {"answer": "no"})
    assert cols.detect(ds.column_names)["question"] == "q"
    labelled = datasets.Dataset.from_dict(
        {"question": ["Is it?"], "label": [1]},
        features=datasets.Features(
            question=datasets.Value("string"), label=datasets.ClassLabel(names=["no", "yes"])
        ),
    )
    (r,) = load_source(labelled, columns=Columns.with_keys(answer_key="label"))
    assert r.answer == "yes"


def bad_dataset():
    return datasets.Dataset.from_list(
        [
            {"problem": "<image>ok?", "answer": "1", "images": [{"bytes": png(), "path": None}]},
            {"problem": "<image>corrupt?", "answer": "2", "images": [{"bytes": b"not a png", "path": None}]},
            {"problem": "<image>no answer?", "answer": None, "images": [{"bytes": png(), "path": None}]},
            {"problem": "<image><image>two?", "answer": "4", "images": [{"bytes": png(), "path": None}]},
        ]
    )


def test_bad_rows_are_counted_with_reasons_or_raise(caplog):
    recs = load_source(bad_dataset(), on_error="skip", label="train_dataset")
    assert len(recs) == 1 and recs.n_skipped == 3
    assert recs.skipped[0] == (
        "train_dataset: row 2: image 0: corrupt or unreadable image (cannot identify image file <9 bytes>)"
    )
    assert recs.skipped[1].startswith("train_dataset: row 3: row has no answer")
    assert "2 <image> placeholder(s) in the question but 1 image(s)" in recs.skipped[2]
    assert "skipped 3 bad row(s) of 4" in caplog.text
    with pytest.raises(DataError, match="row 2: image 0: corrupt"):
        load_source(bad_dataset())


def test_hub_id_offline_fails_in_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    assert offline_reason() == "HF_HUB_OFFLINE=1"
    with pytest.raises(DataError) as exc:
        load_source("mssr-test/no-such-dataset@train")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(
        "mssr-test/no-such-dataset@train: the Hugging Face hub is not available (HF_HUB_OFFLINE=1)"
    )
    assert "not in the local datasets cache" in msg
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert offline_reason() == "HF_DATASETS_OFFLINE=1"


def test_hub_id_online_goes_through_load_dataset(monkeypatch):
    from mssr.data import sources

    calls = []

    def fake_load_dataset(name, split):
        calls.append((name, split))
        return datasets.Dataset.from_list(
            [{"problem": "<image>q", "answer": "5", "images": [{"bytes": png(), "path": None}]}]
        )

    monkeypatch.setattr(sources, "offline_reason", lambda: None)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    (r,) = load_source("hiyouga/geometry3k@test", "train")  # @split wins over the default split
    assert calls == [("hiyouga/geometry3k", "test")] and r.answer == "5"
    load_source("hiyouga/geometry3k", "train")
    assert calls[-1] == ("hiyouga/geometry3k", "train")


def inspect_cli(argv: list[str]) -> int:
    from mssr.cli import data as cli_data

    parser = argparse.ArgumentParser(prog="mssr data")
    cli_data.add_arguments(parser)
    return cli_data.run(parser.parse_args(argv))


def test_mssr_data_inspect(easyr1_dir, tmp_path, capsys):
    assert inspect_cli(["inspect", str(easyr1_dir)]) == 0
    out = capsys.readouterr().out
    assert f"== {easyr1_dir}@train  (split train)" in out and f"{easyr1_dir}@validation" in out
    assert "rows: 24   valid: 24   rejected: 0" in out and "rows: 4   valid: 4   rejected: 0" in out
    assert "  prompt      <- problem" in out and "  images      <- images" in out
    assert "images (List(Image))" in out and "image sizes (WxH): width 64-64, height 64-64; 64x64: 24" in out
    assert "sample row:\n  id: train-00000" in out

    bad = tmp_path / "bad"
    bad_dataset().save_to_disk(str(bad))
    assert inspect_cli(["inspect", str(bad), "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert "rows: 4   valid: 1   rejected: 3" in out
    assert "rejected rows (3):\n" in out and "row 2: image 0: corrupt or unreadable image" in out
    assert "... 1 more (--show N lists more)" in out

    assert inspect_cli(["inspect", str(bad), "--json", "--answer-key", "problem", "--limit", "2"]) == 0
    (rep,) = json.loads(capsys.readouterr().out)
    assert rep["rows"] == 2 and rep["mapping"]["answer"] == "problem" and rep["valid"] == 1

    assert inspect_cli(["inspect", "/no/such/dir"]) == 2
    assert "mssr data inspect: /no/such/dir: no such dataset file or directory" in capsys.readouterr().err


def test_without_datasets_installed_the_message_names_pip_install(easyr1_dir, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(
        DataError, match=r"save_to_disk directory .* needs the `datasets` package: pip install datasets"
    ):
        load_source(easyr1_dir, "train")
    with pytest.raises(DataError, match=r"'owner/name' needs the `datasets` package: pip install datasets"):
        load_source("owner/name@train")
    assert len(load_source([{"question": "q", "answer": "1"}])) == 1  # lists of dicts do not need it
