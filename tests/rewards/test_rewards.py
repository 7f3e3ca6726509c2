"""Built-in rewards, weighted combinations, plug-ins and score_batch (in-process and process pool)."""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from mssr.rewards import (
    AccuracyReward,
    FormatReward,
    PluginReward,
    RewardRangeError,
    RewardSpecError,
    WeightedReward,
    build_reward,
    score_batch,
)

GOOD = r"<think>2 and 2 make 4</think> The answer is $\boxed{4}$."


def test_accuracy_reward_reads_record_columns() -> None:
    acc = build_reward("accuracy")
    assert isinstance(acc, AccuracyReward) and acc.mode == "strict"
    assert acc(GOOD, {"answer": "4"}) == 1.0
    assert acc(GOOD, {"answer": "5"}) == 0.0
    assert acc(r"\boxed{B}", {"answer": "4", "choices": ["3", "4"]}) == 1.0
    assert acc(r"\boxed{1.26}", {"answer": "1.3", "answer_type": "float", "precision": 1}) == 1.0
    with pytest.raises(KeyError, match="answer"):
        acc(GOOD, {"solution": "4"})


def test_accuracy_requires_a_delimited_answer_by_default() -> None:
    assert build_reward("accuracy")("The answer is 4.", {"answer": "4"}) == 0.0
    assert build_reward("accuracy")("<answer>4</answer>", {"answer": "4"}) == 1.0
    assert build_reward("accuracy", require_delimited=False)("The answer is 4.", {"answer": "4"}) == 1.0


def test_accuracy_clean_end_option() -> None:
    acc = build_reward("accuracy", require_clean_end=True)
    assert acc(GOOD, {"answer": "4"}) == 1.0
    assert acc(GOOD + " and more text 4 4 4", {"answer": "4"}) == 0.0


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (GOOD, 1.0),
        (r"<think>x</think>\boxed{}", 0.0),  # empty box
        (r"\boxed{4}", 0.0),  # no think block
        (r"<think></think>\boxed{4}", 0.0),  # empty think
        (r"<think>a</think><think>b</think>\boxed{4}", 0.0),  # two think blocks
        (r"<think>a \boxed{4}</think> so", 0.0),  # box only inside the think block
        (r"<think>a</think> \boxed{4", 0.0),  # unclosed box
        (r"  <think>a</think>\n\boxed{\frac{1}{2}}", 1.0),
    ],
)
def test_format_reward(response: str, expected: float) -> None:
    assert FormatReward()(response, {}) == expected


def test_weighted_reward_logs_components() -> None:
    r = build_reward({"accuracy": 1.0, "format": 0.5})
    assert isinstance(r, WeightedReward)
    out = r(GOOD, {"answer": "4"})
    assert out == {"overall": 1.5, "accuracy": 1.0, "format": 1.0}
    out = r(r"\boxed{4}", {"answer": "4"})
    assert out == {"overall": 1.0, "accuracy": 1.0, "format": 0.0}


def test_paper_reward_is_accuracy_with_format_logged_at_weight_zero() -> None:
    res = score_batch({"accuracy": 1.0, "format": 0.0}, [GOOD, r"\boxed{4}", "4"], [{"answer": "4"}] * 3)
    assert res.scores == [1.0, 1.0, 0.0]
    assert res.extras == {"accuracy": [1.0, 1.0, 0.0], "format": [1.0, 0.0, 0.0]}


def test_build_reward_errors(plugin_file: Path) -> None:
    with pytest.raises(RewardSpecError, match="unknown reward"):
        build_reward("acuracy")
    with pytest.raises(RewardSpecError, match="not found"):
        build_reward("/nonexistent/x.py:f")
    with pytest.raises(RewardSpecError, match="no attribute"):
        build_reward(f"{plugin_file}:missing")
    with pytest.raises(RewardSpecError, match="cannot import"):
        build_reward("no_such_package_xyz.mod:f")
    with pytest.raises(RewardSpecError, match="weight"):
        build_reward({"accuracy": "heavy"})
    with pytest.raises(RewardSpecError, match="bad options"):
        build_reward("format", mode="strict")


def test_plugin_by_dotted_path_and_file(plugin_file: Path) -> None:
    r = build_reward("mssr.rewards.builtin:FormatReward")  # a class is a callable too: returns an instance
    assert isinstance(r, PluginReward)
    f = build_reward(f"{plugin_file}:raises")
    assert f("ok", {}) == 1.0
    clone = pickle.loads(pickle.dumps(f))  # pickled by name, re-imported on first use
    assert clone("ok", {}) == 1.0 and clone.spec == f.spec


def _records(n: int, colour=(255, 0, 0)) -> list[dict]:
    img = Image.new("RGB", (8, 8), colour)
    return [{"answer": "4", "question": "q", "images": [img], "extra": i} for i in range(n)]


@pytest.mark.parametrize("workers", [0, 2])
def test_plugin_looks_at_the_image(plugin_file: Path, workers: int) -> None:
    spec = f"{plugin_file}:red_image"
    red = score_batch(spec, ["red", "blue"], _records(2, (255, 0, 0)), num_workers=workers)
    blue = score_batch(spec, ["red", "blue"], _records(2, (0, 0, 255)), num_workers=workers)
    assert red.scores == [1.0, 0.0] and blue.scores == [0.0, 1.0]
    assert red.backend == ("inline" if workers == 0 else "processes(2)")


@pytest.mark.parametrize("workers", [0, 2])
def test_plugin_that_raises_is_counted_and_the_batch_goes_on(plugin_file: Path, workers: int) -> None:
    res = score_batch(f"{plugin_file}:raises", ["ok", "boom", "ok", "boom"], _records(4), num_workers=workers)
    assert res.scores == [1.0, None, 1.0, None]
    assert res.n_errors == 2 and res.n_timeouts == 0
    assert "item 1: RuntimeError: plug-in exploded on purpose" in res.errors


@pytest.mark.parametrize("workers", [0, 2])
def test_plugin_that_hangs_times_out(plugin_file: Path, workers: int) -> None:
    t = time.perf_counter()
    res = score_batch(
        f"{plugin_file}:hangs", ["a", "hang", "b"], _records(3), num_workers=workers, timeout_s=0.5
    )
    assert res.scores == [0.5, None, 0.5]
    assert res.n_timeouts == 1 and res.n_errors == 0
    assert "timed out" in res.errors[0]
    assert time.perf_counter() - t < 10
    # the runner recovered: the next batch runs normally
    again = score_batch(f"{plugin_file}:hangs", ["a", "b"], _records(2), num_workers=workers, timeout_s=0.5)
    assert again.scores == [0.5, 0.5]


def test_process_pool_kills_a_hang_inside_c_code(plugin_file: Path) -> None:
    t = time.perf_counter()
    res = score_batch(f"{plugin_file}:hangs_in_c", ["hang", "a"], _records(2), num_workers=2, timeout_s=0.5)
    assert res.scores == [None, 0.5] and res.n_timeouts == 1
    assert time.perf_counter() - t < 10


def test_process_pool_survives_a_dying_worker(plugin_file: Path) -> None:
    res = score_batch(f"{plugin_file}:dies", ["die", "a", "b"], _records(3), num_workers=2)
    assert res.scores[1:] == [1.0, 1.0] and res.scores[0] is None
    assert res.n_errors == 1 and "died" in res.errors[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_out_of_range_rewards(plugin_file: Path, workers: int) -> None:
    spec = f"{plugin_file}:out_of_range"
    resp = ["", "a", "abc"]
    res = score_batch(spec, resp, _records(3), num_workers=workers)
    assert res.scores == [0.0, 1.0, 3.0]  # fine when nobody needs [0, 1]
    with pytest.raises(RewardRangeError, match=r"item 2 = 3\.0.*binari"):
        score_batch(spec, resp, _records(3), num_workers=workers, require_unit_interval=True)
    res = score_batch(
        spec, resp, _records(3), num_workers=workers, require_unit_interval=True, binarize_threshold=2
    )
    assert res.scores == [0.0, 0.0, 1.0]


def test_dict_rewards_extras_and_none(plugin_file: Path) -> None:
    res = score_batch(f"{plugin_file}:with_extras", ["ab1", "none", "xyz"], _records(3))
    assert res.scores == [1.0, None, 1.0]
    assert res.extras == {"length": [3.0, None, 3.0], "has_digit": [1.0, None, 0.0]}
    assert res.n_errors == 0 and res.n_scored == 2


@pytest.mark.parametrize(("name", "msg"), [("bad_dict", "overall"), ("bad_type", "expected a number")])
def test_malformed_reward_values_are_errors(plugin_file: Path, name: str, msg: str) -> None:
    res = score_batch(f"{plugin_file}:{name}", ["a"], _records(1))
    assert res.scores == [None] and res.n_errors == 1 and msg in res.errors[0]


def test_lambdas_fall_back_to_in_process() -> None:
    res = score_batch(lambda r, rec: float(r == rec["answer"]), ["4", "5"], _records(2), num_workers=2)
    assert res.scores == [1.0, 0.0]
    assert res.backend == "inline (reward not picklable)"


def test_lambda_that_hangs_is_timed_out_in_process() -> None:
    def slow(r, rec):
        while r == "hang":
            pass
        return 1.0

    res = score_batch(slow, ["hang", "ok"], _records(2), num_workers=2, timeout_s=0.3)
    assert res.scores == [None, 1.0] and res.n_timeouts == 1


def test_inline_timeouts_work_off_the_main_thread() -> None:
    out = {}

    def job():
        out["res"] = score_batch(
            lambda r, rec: [0 for _ in iter(int, 1)] if r == "hang" else 1.0,
            ["hang", "x"],
            _records(2),
            timeout_s=0.3,
        )

    th = threading.Thread(target=job)
    th.start()
    th.join(20)
    assert not th.is_alive()
    assert out["res"].scores == [None, 1.0] and out["res"].n_timeouts == 1


def test_accuracy_batch_in_processes_matches_in_process() -> None:
    responses = [GOOD, r"\boxed{5}", r"\boxed{10^{10^{10}}}", "The answer is (B)", b"\xff\\boxed{4}"] * 20
    records = [{"answer": "4", "choices": None}] * 100
    inline = score_batch("accuracy", responses, records)
    pooled = score_batch("accuracy", responses, records, num_workers=2)
    assert inline.scores == pooled.scores
    assert inline.scores[:5] == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert inline.n_errors == inline.n_timeouts == 0


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 responses but 1 records"):
        score_batch("accuracy", ["a", "b"], [{"answer": "1"}])
