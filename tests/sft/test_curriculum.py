"""SFT curriculum (``init_sft``): a stage starts from the base another SFT config trains; without it every cache
key stays what it was."""

from __future__ import annotations

import pytest
import torch
import yaml

from mssr.config import ConfigError
from mssr.models import load_policy
from mssr.sft import SFTConfig, load_sft_config, run_sft
from mssr.sft import trainer as sft_trainer


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from mssr.data.builtin import generate_dataset

    out = tmp_path_factory.mktemp("curriculum-data")
    generate_dataset(out, n_train=12, n_val=4, n_test=0, seed=3)
    return out


def _stage(path, data_dir, **kw):
    cfg = dict(
        data_dir=str(data_dir),
        max_steps=2,
        batch_size=4,
        warmup_steps=1,
        eval_every=0,
        n_dev=0,
        n_test_eval=0,
        stop_accuracy=None,
        instruction=None,
    )
    cfg.update(kw)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_stage_two_starts_from_stage_one(data_dir, tmp_path):
    one = _stage(tmp_path / "one.yaml", data_dir)
    two = _stage(tmp_path / "two.yaml", data_dir, init_sft=str(one), lr=1e-3)
    rt = [f"cache_dir={tmp_path / 'cache'}", "progress=false", "threads=1"]
    cfg2 = load_sft_config(two, rt)
    cfg1 = cfg2.init_config()
    assert cfg1.cache_dir == cfg2.cache_dir and cfg2.key_dict()["init_sft"] == cfg1.cache_key()

    start = sft_trainer._init_policy(cfg2, 64, run_sft(cfg1))  # stage one, trained and cached first
    w1 = load_policy(run_sft(cfg1) / "policy").model.state_dict()
    w0 = start.model.state_dict()
    assert all(torch.equal(w0[k], w1[k]) for k in w1)

    d2 = run_sft(cfg2)
    w2 = load_policy(d2 / "policy").model.state_dict()
    assert not all(torch.equal(w2[k], w1[k]) for k in w1)  # stage two trained on from there

    # the key follows what stage one trains (it is read from stage one's YAML)
    key = cfg2.cache_key()
    _stage(tmp_path / "one.yaml", data_dir, lr=2e-3)
    assert load_sft_config(two, rt).cache_key() != key


def test_no_curriculum_leaves_keys_alone(tmp_path):
    assert "init_sft" not in SFTConfig().key_dict()
    assert SFTConfig().cache_key() == "5abce4d2ce540c68"  # tests/sft/test_config.py pins the same
    with pytest.raises(ConfigError, match="init_sft"):
        load_sft_config(None, [f"init_sft={tmp_path / 'missing.yaml'}"])
