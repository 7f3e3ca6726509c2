"""The SFT config: the default base's cache key is pinned, and ``mssr sft`` loads YAML + dotted overrides."""

from __future__ import annotations

import json

import pytest

from mssr.config import ConfigError
from mssr.models import DEFAULT_INSTRUCTION
from mssr.sft import SFTConfig, load_sft_config
from mssr.sft.config import default_data


def test_default_cache_key_is_pinned():
    """The key of the base every default RL job warm-starts from. It changes only with a deliberate change of
    what trains (SFT_VERSION, a hashed field, the built-in data generator's version), which retrains every
    cached base: update this value only then."""
    assert SFTConfig().cache_key() == "5abce4d2ce540c68"
    assert load_sft_config().cache_key() == "5abce4d2ce540c68"


def test_trainer_warm_start_uses_the_same_config():
    from mssr.trainer.config import TrainConfig
    from mssr.trainer.setup import sft_config

    assert sft_config(TrainConfig()).cache_key() == SFTConfig().cache_key()


def test_overrides_and_yaml(tmp_path):
    cfg = load_sft_config(
        None, ["max_steps=200", "lr=1e-3", "stop_accuracy=null", "preset=small", "threads=2"]
    )
    assert (cfg.max_steps, cfg.lr, cfg.stop_accuracy, cfg.preset, cfg.threads) == (
        200,
        1e-3,
        None,
        "small",
        2,
    )
    # data is merged key by key onto the defaults; an int where the default is a float hashes as the float
    cfg = load_sft_config(None, ["data.seed=2", "data.mc_fraction=0"])
    assert cfg.data == {**default_data(), "seed": 2}
    assert (
        cfg.cache_key()
        == SFTConfig(data={**default_data(), "seed": 2}).cache_key()
        != SFTConfig().cache_key()
    )
    assert load_sft_config(None, ["data.seed=1"]).cache_key() == SFTConfig().cache_key()
    path = tmp_path / "sft.yaml"
    path.write_text("max_steps: 50\ndata:\n  n_train: 100\ninstruction: null\n")
    cfg = load_sft_config(path, ["eval_every=5"])
    assert (cfg.max_steps, cfg.eval_every, cfg.instruction) == (50, 5, None)
    assert cfg.data == {**default_data(), "n_train": 100}
    assert load_sft_config(None, ["instruction=default"]).instruction == DEFAULT_INSTRUCTION
    # run-time fields do not enter the key
    assert load_sft_config(None, ["threads=1", "progress=false", "cache_dir=/x"]).cache_key() == (
        SFTConfig().cache_key()
    )


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("stepz=3", "unknown config key stepz"),
        ("max_steps=0", "max_steps must be >= 1"),
        ("stop_accuracy=1.5", "stop_accuracy"),
        ("stop_step=0", "stop_step must be in"),
        ("stop_step=3001", "stop_step must be in"),
        ("preset=huge", "preset"),
        ("data.colour=1", "data"),
        ("lr=fast", "lr"),
    ],
)
def test_bad_config_is_a_config_error(override, match):
    with pytest.raises(ConfigError, match=match):
        load_sft_config(None, [override])


def test_cli_reports_config_errors_and_uses_the_loader(tmp_path, capsys, monkeypatch):
    from mssr.cli.main import main
    from mssr.sft import cache

    assert main(["sft", "max_steps=-1"]) == 2
    captured = capsys.readouterr()
    assert "config error" in captured.err and captured.out == ""  # errors go to stderr

    seen = {}

    def fake_run(cfg, *, force=False):
        seen["cfg"], seen["force"] = cfg, force
        run_dir = tmp_path / "run"
        run_dir.mkdir(exist_ok=True)
        (run_dir / cache.DONE_FILE).write_text(
            json.dumps({"steps": 3, "wall_s": 1.0, "threads": 1, "dev": None})
        )
        return run_dir

    import mssr.sft

    monkeypatch.setattr(mssr.sft, "run_sft", fake_run)
    assert main(["sft", "--force", "--json", f"cache_dir={tmp_path}", "max_steps=3", "data.seed=4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 3 and out["cached"] is False
    cfg = seen["cfg"]
    assert seen["force"] and cfg.max_steps == 3 and cfg.data["seed"] == 4 and cfg.cache_dir == str(tmp_path)
