"""`mssr data` writes the splits and prints a summary."""

from __future__ import annotations

import argparse
import json

from mssr.cli import data as cli_data


def main(argv: list[str]) -> int:
    """Parse and run `mssr data` exactly as the CLI does, without importing the other sub-commands
    (building the full `mssr` parser imports the model stack, ~20 s on a busy 2-core machine)."""
    assert argv[0] == "data"
    parser = argparse.ArgumentParser(prog="mssr data")
    cli_data.add_arguments(parser)
    return cli_data.run(parser.parse_args(argv[1:]))


def test_mssr_data_writes_splits_and_summarises(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(
        [
            "data",
            "--out",
            str(out),
            "--n-train",
            "12",
            "--n-val",
            "4",
            "--n-test",
            "4",
            "--seed",
            "5",
            "--image-size",
            "56",
            "--families",
            "bars,geometry",
            "--difficulty",
            "easy=1,hard=1",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "[train] 12 items" in text and "bars=6" in text and "geometry=6" in text
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        rows = [json.loads(x) for x in (out / f"{split}.jsonl").read_text().splitlines()]
        assert len(rows) == n and {r["family"] for r in rows} == {"bars", "geometry"}
    assert json.loads((out / "manifest.json").read_text())["config"]["difficulty"] == {
        "easy": 1.0,
        "hard": 1.0,
    }


def test_mssr_data_cache_and_json_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MSSR_CACHE", str(tmp_path))
    args = ["data", "--n-train", "8", "--n-val", "4", "--n-test", "4", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["dir"] == second["dir"] and first["dir"].startswith(str(tmp_path / "data" / "builtin-"))
    assert second["splits"]["train"]["n"] == 8 and second["splits"]["val"]["family"]["counting"] == 1


def test_mssr_data_rejects_unknown_family(tmp_path, capsys):
    assert main(["data", "--out", str(tmp_path), "--families", "poetry"]) == 2
    assert "unknown families" in capsys.readouterr().out
