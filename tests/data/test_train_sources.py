"""Training from datasets as users have them: `mssr train data.train=<save_to_disk dir>` and
`mssr.train(train_dataset=<datasets.Dataset>)` with EasyR1's column names run two steps; a hub id in offline
mode stops `mssr train` with one line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from mssr.data import DataError

from .test_sources import easyr1_dir, easyr1_rows  # noqa: F401 - the module fixture is used here too

datasets = pytest.importorskip("datasets")
REWARD = f"{Path(__file__).resolve().parents[1] / 'trainer' / 'plugin_rewards.py'}:length_parity"


def fast(policy: Path, out: Path) -> list[str]:
    return [
        f"model.path={policy}",
        f"output_dir={out}",
        f"reward.spec={REWARD}",
        "steps=2",
        "device=cpu",
        "threads=1",
        "rollout.rollouts_per_step=8",
        "rollout.max_new_tokens=8",
        "rollout.gen_batch_size=8",
        "optim.mini_batch_prompts=4",
        "optim.micro_batch_size=4",
        "val.every=0",
        "val.at_start=false",
        "val.max_items=4",
        "checkpoint.every=0",
        "logging.progress=false",
        "logging.tensorboard=false",
        "logging.plot=false",
    ]


def mssr_train(overrides: list[str]) -> int:
    from mssr.cli import train as cli_train

    parser = argparse.ArgumentParser(prog="mssr train")
    cli_train.add_arguments(parser)
    return cli_train.run(parser.parse_args(overrides))


def steps_logged(out: Path) -> list[int]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "actor/pg_loss" in r]


def test_mssr_train_from_save_to_disk_dir(tiny_policy_dir, easyr1_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    rc = mssr_train([*fast(tiny_policy_dir, out), f"data.train={easyr1_dir}", "data.max_train_items=12"])
    assert rc == 0, capsys.readouterr().err
    json.loads(capsys.readouterr().out)  # the run summary
    assert steps_logged(out) == [1, 2]
    init = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert init["init/rollouts"] == 12  # one per training item (data.max_train_items)


def test_python_api_trains_from_in_memory_dataset(tiny_policy_dir, tiny_data_dir, tmp_path, caplog):
    from mssr.trainer import train

    rows = easyr1_rows(tiny_data_dir, "train")[:12]
    rows[3]["images"] = [{"bytes": b"corrupt", "path": None}]  # counted and skipped, not a crash
    ds = datasets.Dataset.from_list(rows).cast_column("images", datasets.List(datasets.Image()))
    out = tmp_path / "api"
    with pytest.raises(DataError) as exc:  # the default data.on_error=raise: stop at the row, say what to do
        train(overrides=fast(tiny_policy_dir, out), train_dataset=ds)
    assert str(exc.value) == (
        "train_dataset: row 4: image 0: corrupt or unreadable image (cannot identify image file <7 bytes>) "
        "(data.on_error=skip drops bad rows and counts them)"
    )
    train(overrides=[*fast(tiny_policy_dir, out), "data.on_error=skip"], train_dataset=ds)
    assert steps_logged(out) == [1, 2]
    assert "train_dataset: skipped 1 bad row(s) of 12" in caplog.text


def test_mssr_train_hub_id_offline_is_one_line(tiny_policy_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc = mssr_train([*fast(tiny_policy_dir, tmp_path / "hub"), "data.train=hiyouga/geometry3k@train"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert err.startswith(
        "mssr train: error: hiyouga/geometry3k@train: the Hugging Face hub is not available (HF_HUB_OFFLINE=1)"
    )
