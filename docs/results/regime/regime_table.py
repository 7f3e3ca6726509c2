"""The regime study's tables, recomputed from the per-step metrics committed beside this script.

    python docs/results/regime/regime_table.py collect RUNS_DIR STUDY [--partial] [--arms A,B]  # -> metrics/STUDY/
    python docs/results/regime/regime_table.py table STUDY [--floor 0.05]  # markdown tables of metrics/STUDY/
    python docs/results/regime/regime_table.py drift STUDY [STUDY ...]     # the slow-drift tables
    python docs/results/regime/regime_table.py shaping STUDY [STUDY ...] [--phases 1-100,101-400,401-1000]
    python docs/results/regime/regime_table.py plot STUDY [STUDY ...] --out FILE.png  # entropy and validation
    python docs/results/regime/regime_table.py pair STUDY... ARM_A ARM_B  # seed-paired entropy kept, A against B
    python docs/results/regime/regime_table.py saturated STUDY [STUDY ...] [--phases 1-100,101-400,401-1000]

``collect`` stores every finished run of a ``mssr compare`` directory as ``metrics/STUDY/ARM/seedK.jsonl.gz`` (its
``metrics.jsonl``, gzip'd, byte for byte) with its ``config.yaml`` and ``environment.jsonl``, and the directory's
``compare.json`` (commands, machine). ``table`` reads only those files, so every number in
docs/results/regime/README.md can be recomputed from the repository. Per arm, mean ± sample std over seeds
(``k/n``: seeds where an event happened):

- validation (sampled pass@1 on 200 items) at step 0 and at the given steps; the onset: the first validation at
  or below ``--floor`` (collapse to zero), and the first at or below half the run's starting value; and, finer
  than validation every 10 steps, the first step whose training reward (3-step running mean) is at or below
  half of step 1's;
- sampled-token entropy: mean of steps 1–5, of the last 5 steps, and the paper's criterion — the first step whose
  entropy is below half of its running peak, and whether that came before the validation onset;
- KL to the reference (``actor/kl_loss``, k3 token mean) over the last 5 steps; response length and truncated
  fraction over the last 5 steps; training reward over the last 5 steps;
- mechanism: zero-reward steps before the onset, the raw advantage spread (``adv/raw_adv_std``) against the
  reward's own spread sqrt(p(1−p)) over steps 1–5, the gradient norm, and ``adv/signal_gain`` where logged;
- compute: rollouts and generated tokens (the tracker's initialisation included) and wall-clock (initialisation
  + steps, without validation).

``drift`` (the long, small-step runs of part 3; several studies' arms side by side): per arm and 50-step block,
mean ± std over seeds of the validation at the block's last step, and of 10-step means (ending there) of the
sampled-token entropy, the training reward and the KL to the reference, and the shaping probe's ψ-attributable
entropy change (``probe/entropy_psi``, the block's probes); then per arm the paper's criterion: the lowest
10-step mean entropy and its step, whether it fell below half of its peak (k/n seeds), the first validation
more than 0.1 below the best so far, and the entropy of the last 10 steps against the first 10.

``shaping`` (what the advantage shaping did, per phase of the run): per arm and phase, mean ± std over seeds of
each run's mean over the phase's steps of the token mean of Ã (``critic/advantages/mean``: ψ's net offset), ψ
relative to |Â| (``mssr/psi_rel``), the share of tokens where ψ's cap binds (``mssr/shaping_cap_frac``) and the
gains Σ|Ã| / Σ|Â| over the tokens with Â > 0 and Â < 0 (``mssr/gain_pos``, ``mssr/gain_neg``), and the
signal-scaled variant's gain min(1, σ_r/σ_A) (``adv/signal_gain``); "—" where a run
did not log it (a run older than the metric); an arm that logged none of a figure (no shaping) is left out of
its table.

``pair`` compares two arms seed by seed (the seeds both have; the arms may sit in different studies of one setting,
as a variant run later in its own directory): each run's entropy kept (last 10 steps
against the first 10, 10-step means as in ``drift``), the differences A − B, in how many pairs A is higher, and a
paired t statistic with its two-sided p (Student's t with n − 1 degrees of freedom).

``saturated`` (what an arm does with batches it has learned): per arm and phase, mean ± std over seeds of the
share of steps whose batch is all correct (``critic/score/mean`` = 1), the raw advantage spread on those steps
(``adv/raw_adv_std``: the baselines' noise, which the unit-spread normalisation scales up), and the gradient norm
(``actor/grad_norm``) on those steps and on the others.

``plot`` draws the slow-drift runs of ``studies`` as a PNG a person can open (not committed: regenerate it): one
column per arm, the 10-step mean sampled-token entropy of every seed above and its validation below.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import shutil
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _read(path: Path) -> list[dict]:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line
    return sorted(rows, key=lambda r: r.get("step", 0))


def collect(runs_dir: Path, study: str, partial: bool = False, arms: list[str] | None = None) -> None:
    """Copy each finished run's metrics (gzip'd), config and environment into metrics/STUDY/ARM/. With
    ``partial``, also each unfinished run as it stands (its complete lines: a run still going may be mid-write);
    the drift tables give every run's last step. With ``arms``, only those arms' runs."""
    manifest = json.loads((runs_dir / "manifest.json").read_text())
    target = HERE / "metrics" / study
    target.mkdir(parents=True, exist_ok=True)
    n = 0
    for rec in manifest["runs"]:
        run = runs_dir / rec["dir"]
        metrics = run / "metrics.jsonl"
        if not metrics.is_file() or (rec.get("status") != "done" and not partial):
            continue
        if arms is not None and rec["arm"] not in arms:
            continue
        arm_dir = target / rec["arm"]
        arm_dir.mkdir(exist_ok=True)
        seed = Path(rec["dir"]).name
        data = metrics.read_bytes()
        with gzip.GzipFile(arm_dir / f"{seed}.jsonl.gz", "wb", mtime=0) as dst:
            dst.write(data[: data.rfind(b"\n") + 1])
        text = portable_config(
            (run / "config.yaml").read_text(encoding="utf-8"), f"runs/{study}/{rec['arm']}/{seed}"
        )
        (arm_dir / f"{seed}.config.yaml").write_text(text, encoding="utf-8")
        if (run / "environment.jsonl").is_file():
            shutil.copyfile(run / "environment.jsonl", arm_dir / f"{seed}.environment.jsonl")
        n += 1
    shutil.copyfile(runs_dir / "compare.json", target / "compare.json")
    print(f"{n} runs -> {target}")


def portable_config(text: str, output_dir: str) -> str:
    """A run's config.yaml without the paths of the machine that ran it: ``output_dir`` becomes ``output_dir`` (a
    relative path), and ``data.train`` — the built-in task's directory in that machine's cache — becomes null (the
    built-in task is regenerated from ``data.builtin``; its cache name is kept in a comment). Any other absolute
    path is refused."""
    text = re.sub(r"(?m)^output_dir: .*$", f"output_dir: {output_dir}", text)
    text = re.sub(
        r"(?m)^  train: /\S*/(builtin-[0-9a-f]+)$",
        r"  train: null  # the built-in task (\1 in the cache of the machine that ran it)",
        text,
    )
    left = re.findall(r"(?m)^.*: /\S+", text)
    if left:
        raise ValueError(f"absolute paths left in a config: {left}")
    return text


def _stat(xs: list[float], spec: str = ".3f") -> str:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return "—"
    s = format(statistics.fmean(xs), spec)
    return s + (f" ± {format(statistics.stdev(xs), spec.replace('+', ''))}" if len(xs) > 1 else "")


def _event(xs: list[int | None]) -> str:
    hit = [x for x in xs if x is not None]
    return f"{_stat(hit, '.0f')} ({len(hit)}/{len(xs)})" if hit else f"— (0/{len(xs)})"


def _mean(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    return statistics.fmean(vals) if vals else float("nan")


def run_summary(rows: list[dict], floor: float) -> dict:
    """One run's figures (see the module docstring)."""
    val = {r["step"]: r["val/accuracy"] for r in rows if isinstance(r.get("val/accuracy"), int | float)}
    steps = [r for r in rows if r.get("step", 0) > 0 and "actor/entropy" in r]
    start = val.get(0)
    onset = next((s for s in sorted(val) if s > 0 and val[s] <= floor), None)
    half = next((s for s in sorted(val) if s > 0 and start and val[s] <= start / 2), None)
    peak, ent_half = 0.0, None
    for r in steps:
        peak = max(peak, r["actor/entropy"])
        if ent_half is None and r["actor/entropy"] < peak / 2:
            ent_half = r["step"]
    # the training reward, per step: a finer onset than validation every 10 steps (3-step running mean)
    rew = [r.get("critic/score/mean") for r in steps]
    run3 = [
        statistics.fmean(rew[max(0, i - 2) : i + 1])
        for i in range(len(rew))
        if None not in rew[max(0, i - 2) : i + 1]
    ]
    start_reward = rew[0] if rew and rew[0] is not None else None
    reward_half = next(
        (steps[i]["step"] for i, x in enumerate(run3) if start_reward and x <= start_reward / 2), None
    )
    reward_floor = next((steps[i]["step"] for i, x in enumerate(run3) if x <= floor), None)
    drop = onset or half
    first5, last5 = steps[:5], steps[-5:]
    before = [r for r in steps if drop is None or r["step"] < drop]
    p = [r["critic/score/mean"] for r in first5 if "critic/score/mean" in r]
    init = next((r for r in rows if r.get("step") == 0), {})
    last = steps[-1] if steps else {}
    return {
        "start": start,
        "val": val,
        "final": val.get(max(val)) if val else None,
        "onset": onset,
        "half": half,
        "reward_half": reward_half,
        "reward_floor": reward_floor,
        "ent_first5": _mean(first5, "actor/entropy"),
        "ent_last5": _mean(last5, "actor/entropy"),
        "ent_half": ent_half,
        "ent_half_first": None if ent_half is None else (drop is None or ent_half < drop),
        "kl_last5": _mean(last5, "actor/kl_loss"),
        "len_last5": _mean(last5, "response_length/mean"),
        "trunc_last5": _mean(last5, "response_length/clip_ratio"),
        "reward_last5": _mean(last5, "critic/score/mean"),
        "zero_reward_before": sum(1 for r in before if r.get("critic/score/mean") == 0),
        "raw_adv_std_first5": _mean(first5, "adv/raw_adv_std"),
        "reward_std_first5": statistics.fmean(math.sqrt(x * (1 - x)) for x in p) if p else float("nan"),
        "grad_norm_first5": _mean(first5, "actor/grad_norm"),
        "signal_gain": _mean(steps, "adv/signal_gain"),
        "updates": _mean(steps, "actor/updates"),
        "rollouts": last.get("train/rollouts", 0) + last.get("train/init_rollouts", 0),
        "init_rollouts": last.get("train/init_rollouts", 0),
        "tokens": last.get("train/gen_tokens", 0) + last.get("train/init_gen_tokens", 0),
        "wall": init.get("init/time_s", 0.0) + sum(r.get("timing_s/step", 0.0) for r in steps),
    }


Runs = dict[str, list[tuple[str, list[dict]]]]  # arm -> its runs as (seed name, e.g. "seed0"; metric rows)


def load_study(study: str) -> Runs:
    """Every committed run of ``metrics/STUDY/``, per arm, in seed-file order."""
    arms: Runs = {}
    for path in sorted((HERE / "metrics" / study).glob("*/seed*.jsonl.gz")):
        arms.setdefault(path.parent.name, []).append((path.name.split(".")[0], _read(path)))
    return arms


def load_arms(studies: list[str]) -> Runs:
    """The arms of several studies side by side; an arm's name in a later study overrides an earlier one's."""
    arms: Runs = {}
    for study in studies:
        arms.update(load_study(study))
    return arms


def tables(study: str, floor: float, at: list[int]) -> str:
    summ = {arm: [run_summary(rows, floor) for _, rows in runs] for arm, runs in load_study(study).items()}
    out = []
    head = ["arm", "seeds", "upd/step", "val @ 0", *[f"val @ {s}" for s in at], f"first val ≤ {floor}",
            "first val ≤ ½ start", "train reward ≤ ½ step 1 (3-step mean)", "entropy 1–5", "entropy last 5", "entropy < ½ peak (first, k/n)",
            "KL last 5", "length last 5", "truncated last 5", "train reward last 5"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, ss in summ.items():
        cells = [arm, str(len(ss)), _stat([s["updates"] for s in ss], ".1f"), _stat([s["start"] for s in ss])]
        cells += [_stat([s["val"].get(t) for s in ss]) for t in at]
        cells += [_event([s["onset"] for s in ss]), _event([s["half"] for s in ss])]
        cells += [_event([s["reward_half"] for s in ss])]
        cells += [_stat([s["ent_first5"] for s in ss], ".4f"), _stat([s["ent_last5"] for s in ss], ".4f")]
        first = sum(1 for s in ss if s["ent_half_first"])
        cells += [f"{_event([s['ent_half'] for s in ss])}; before the val drop {first}/{len(ss)}"]
        cells += [_stat([s["kl_last5"] for s in ss], ".3f"), _stat([s["len_last5"] for s in ss], ".1f")]
        cells += [_stat([s["trunc_last5"] for s in ss], ".2f"), _stat([s["reward_last5"] for s in ss])]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Mechanism (steps 1–5 unless said):", ""]
    head = ["arm", "zero-reward steps before the val drop", "raw advantage std", "reward std √(p(1−p))",
            "ratio", "grad norm", "signal gain (mean)"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, ss in summ.items():
        ratio = [s["raw_adv_std_first5"] / s["reward_std_first5"] for s in ss if s["reward_std_first5"] > 0]
        cells = [arm, _stat([s["zero_reward_before"] for s in ss], ".1f"),
                 _stat([s["raw_adv_std_first5"] for s in ss]), _stat([s["reward_std_first5"] for s in ss]),
                 _stat(ratio, ".2f"), _stat([s["grad_norm_first5"] for s in ss], ".2f"),
                 _stat([s["signal_gain"] for s in ss])]  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Compute (the tracker's initialisation included; wall-clock without validation):", ""]
    head = ["arm", "final val", "rollouts (init)", "generated tokens", "wall-clock s"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, ss in summ.items():
        cells = [arm, _stat([s["final"] for s in ss]),
                 f"{_stat([s['rollouts'] for s in ss], ',.0f')} ({_stat([s['init_rollouts'] for s in ss], ',.0f')})",
                 _stat([s["tokens"] for s in ss], ",.0f"), _stat([s["wall"] for s in ss], ".0f")]  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _window(steps: list[dict], end: int, key: str, width: int = 10) -> float:
    """Mean of ``key`` over the ``width`` steps ending at step ``end``."""
    return _mean([r for r in steps if end - width < r["step"] <= end], key)


def drift_summary(rows: list[dict]) -> dict:
    """One long run's entropy and validation course (see the module docstring, ``drift``)."""
    steps = [r for r in rows if r.get("step", 0) > 0 and "actor/entropy" in r]
    val = {r["step"]: r["val/accuracy"] for r in rows if isinstance(r.get("val/accuracy"), int | float)}
    last = steps[-1]["step"] if steps else 0
    smooth = [(r["step"], _window(steps, r["step"], "actor/entropy")) for r in steps if r["step"] >= 10]
    peak, low, low_step, below_half = 0.0, math.inf, None, None
    for step, e in smooth:
        peak = max(peak, e)
        if e < low:
            low, low_step = e, step
        if below_half is None and e < peak / 2:
            below_half = step
    best, val_drop = -1.0, None
    for step in sorted(val):
        if val_drop is None and best - val[step] > 0.1:
            val_drop = step
        best = max(best, val[step])
    first10, last10 = _window(steps, 10, "actor/entropy"), _window(steps, last, "actor/entropy")
    return {
        "last": last,
        "val": val,
        "blocks": {
            b: {
                "val": val.get(b),
                "entropy": _window(steps, b, "actor/entropy"),
                "reward": _window(steps, b, "critic/score/mean"),
                "kl": _window(steps, b, "actor/kl_loss"),
                "probe": _window(steps, b, "probe/entropy_psi", width=50),
            }
            for b in [10, *range(50, last + 1, 50)]
        },
        "ent_first10": first10,
        "ent_last10": last10,
        "ent_kept": last10 / first10 if first10 > 0 else float("nan"),  # the entropy kept: last 10 / first 10
        "ent_low": low if smooth else float("nan"),
        "ent_peak": peak,
        "ent_low_step": low_step,
        "ent_below_half": below_half,
        "val_drop": val_drop,
    }


def drift_tables(studies: list[str]) -> str:
    """The slow-drift tables of the arms of ``studies`` (an arm's name in a later study overrides)."""
    loaded = load_arms(studies)
    arms = {arm: [drift_summary(rows) for _, rows in runs] for arm, runs in loaded.items()}
    seeds = {arm: [seed for seed, _ in runs] for arm, runs in loaded.items()}
    head = ["arm", "seeds", "step", "validation", "entropy (10-step mean)", "train reward (10-step mean)",
            "KL to ref (10-step mean)", "ψ-attributable entropy change per update (probe)"]  # fmt: skip
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, ss in arms.items():
        blocks = sorted(set.intersection(*(set(s["blocks"]) for s in ss)))
        for b in blocks:
            bs = [s["blocks"][b] for s in ss]
            cells = [arm, str(len(ss)), "1–10" if b == 10 else str(b)]
            cells += [_stat([x["val"] for x in bs]) if b != 10 else _stat([s["val"].get(0) for s in ss])]
            cells += [_stat([x["entropy"] for x in bs], ".4f"), _stat([x["reward"] for x in bs])]
            cells += [_stat([x["kl"] for x in bs], ".3f"), _stat([x["probe"] for x in bs], "+.5f")]
            out.append("| " + " | ".join(cells) + " |")
    out += ["", "The paper's criterion, per arm (10-step mean entropy; k/n: seeds where it happened):", ""]
    head = ["arm", "seeds", "steps", "entropy 1–10", "lowest entropy (step)", "entropy < ½ its peak",
            "validation > 0.1 below its best", "entropy last 10", "last 10 / first 10", "final validation"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, ss in arms.items():
        cells = [arm, str(len(ss)), _stat([s["last"] for s in ss], ".0f"), _stat([s["ent_first10"] for s in ss], ".4f"),
                 f"{_stat([s['ent_low'] for s in ss], '.4f')} ({_stat([s['ent_low_step'] for s in ss], '.0f')})",
                 _event([s["ent_below_half"] for s in ss]), _event([s["val_drop"] for s in ss]),
                 _stat([s["ent_last10"] for s in ss], ".4f"), _stat([s["ent_kept"] for s in ss], ".2f"),
                 _stat([s["val"].get(s["last"]) for s in ss])]  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Per run:", ""]
    head = ["arm", "seed", "steps", "entropy 1–10", "peak (10-step)", "lowest (step)", "entropy last 10",
            "best validation", "final validation"]  # fmt: skip
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, ss in arms.items():
        for seed, s in zip(seeds[arm], ss, strict=True):
            cells = [arm, seed.removeprefix("seed"), str(s["last"]), f"{s['ent_first10']:.4f}", f"{s['ent_peak']:.4f}",
                     f"{s['ent_low']:.4f} ({s['ent_low_step']})", f"{s['ent_last10']:.4f}",
                     f"{max(s['val'].values()):.3f}", f"{s['val'].get(s['last'], float('nan')):.3f}"]  # fmt: skip
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


SHAPING_KEYS = {
    "token mean of Ã": "critic/advantages/mean",
    "ψ / |Â|": "mssr/psi_rel",
    "cap binds (share of tokens)": "mssr/shaping_cap_frac",
    "gain, Â > 0": "mssr/gain_pos",
    "gain, Â < 0": "mssr/gain_neg",
    "signal gain (ours, adv_scale=signal; 0 for a batch of equal rewards)": "adv/signal_gain",
}


def phase_means(rows: list[dict], phases: list[tuple[int, int]], key: str) -> list[float]:
    """One run's mean of ``key`` over the steps first..last of each phase (nan where not logged)."""
    return [_mean([r for r in rows if first <= r.get("step", 0) <= last], key) for first, last in phases]


def _phase_table(
    title: str, values: dict[str, list[list[float]]], phases: list[tuple[int, int]], keep_empty: bool
) -> list[str]:
    """A markdown table of arms × phases from each arm's per-run values (one per phase): mean ± std over its runs;
    an arm whose cells are all "—" is left out unless ``keep_empty``."""
    head = ["arm", "seeds", *[f"steps {a}–{b}" for a, b in phases]]
    out = [f"{title}:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, per_run in values.items():
        cells = [_stat([v[i] for v in per_run]) for i in range(len(phases))]
        if keep_empty or any(c != "—" for c in cells):
            out.append("| " + " | ".join([arm, str(len(per_run)), *cells]) + " |")
    return [*out, ""]


def shaping_tables(studies: list[str], phases: list[tuple[int, int]]) -> str:
    """Per figure of ``SHAPING_KEYS``, a table of arms × phases (an arm's name in a later study overrides)."""
    arms = load_arms(studies)
    out: list[str] = []
    for title, key in SHAPING_KEYS.items():
        values = {arm: [phase_means(rows, phases, key) for _, rows in runs] for arm, runs in arms.items()}
        out += _phase_table(f"{title} (`{key}`)", values, phases, keep_empty=False)  # no shaping: no row
    return "\n".join(out).rstrip()


def saturated_means(
    rows: list[dict], phases: list[tuple[int, int]], correct: bool, key: str | None
) -> list[float]:
    """One run's mean of ``key`` per phase over its all-correct steps (``correct``) or its other steps; with
    ``key`` None, the share of the phase's steps that are all correct. Steps are rows with a training reward."""
    steps = [r for r in rows if isinstance(r.get("critic/score/mean"), int | float)]
    if key is None:
        flags = [{"step": r["step"], "all_correct": float(r["critic/score/mean"] >= 1.0)} for r in steps]
        return phase_means(flags, phases, "all_correct")
    return phase_means([r for r in steps if (r["critic/score/mean"] >= 1.0) == correct], phases, key)


def saturated_tables(studies: list[str], phases: list[tuple[int, int]]) -> str:
    """Per arm and phase: the share of all-correct steps, their raw advantage spread and gradient norm, and the
    gradient norm of the other steps (an arm's name in a later study overrides an earlier one's)."""
    arms = load_arms(studies)
    figures = [  # title, all-correct steps or the others, key (None: the share of all-correct steps)
        ("share of steps whose batch is all correct", True, None),
        ("raw advantage std on those steps (`adv/raw_adv_std`)", True, "adv/raw_adv_std"),
        ("gradient norm on those steps (`actor/grad_norm`)", True, "actor/grad_norm"),
        ("gradient norm on the other steps", False, "actor/grad_norm"),
    ]
    out: list[str] = []
    for title, correct, key in figures:
        values = {
            arm: [saturated_means(rows, phases, correct, key) for _, rows in runs]
            for arm, runs in arms.items()
        }
        out += _phase_table(title, values, phases, keep_empty=True)
    return "\n".join(out).rstrip()


def plot_drift(studies: list[str], out: Path) -> Path:
    """Entropy (10-step means) and validation of every run of ``studies``, one column per arm, seeds as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = load_arms(studies)
    if not arms:
        raise SystemExit(f"no runs under metrics/ for {studies}")
    fig, axes = plt.subplots(
        2, len(arms), figsize=(4 * len(arms), 6), sharex=True, sharey="row", squeeze=False
    )
    for col, (arm, runs) in enumerate(arms.items()):
        for seed, rows in runs:
            steps = [r for r in rows if r.get("step", 0) > 0 and "actor/entropy" in r]
            ends = [r["step"] for r in steps if r["step"] >= 10]
            axes[0][col].plot(ends, [_window(steps, e, "actor/entropy") for e in ends], lw=1, label=seed)
            val = sorted(
                (r["step"], r["val/accuracy"]) for r in rows if isinstance(r.get("val/accuracy"), int | float)
            )
            axes[1][col].plot([v[0] for v in val], [v[1] for v in val], lw=1, marker=".", ms=3)
        axes[0][col].set_title(f"{arm} ({len(runs)} seeds)")
        axes[0][col].legend(fontsize=7)
        axes[1][col].set_xlabel("step")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("sampled-token entropy (10-step mean)")
    axes[1][0].set_ylabel("validation accuracy")
    fig.suptitle(" + ".join(studies))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def t_two_sided_p(t: float, df: int, n: int = 20000) -> float:
    """Two-sided p of Student's t: 1 − 2·∫₀^|t| f(x) dx, the density integrated by Simpson's rule."""
    if math.isinf(t):
        return 0.0
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))

    def f(x: float) -> float:
        return c * (1 + x * x / df) ** (-(df + 1) / 2)

    h = abs(t) / n
    area = f(0) + f(abs(t)) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, n))
    return max(0.0, 1 - 2 * area * h / 3)


def pair_table(studies: list[str], a: str, b: str) -> str:
    """Seed-paired comparison of the entropy kept by arms ``a`` and ``b`` (see the docstring).

    The arms may come from different studies of the same setting (``load_arms``): a seed fixes the model's
    initialisation and the data order, so seed K of one arm pairs with seed K of the other.
    """
    runs = load_arms(studies)
    where = " + ".join(f"metrics/{s}" for s in studies)
    kept = {}
    for arm in (a, b):
        if arm not in runs:
            raise SystemExit(f"no arm {arm!r} in {where} (arms: {sorted(runs)})")
        kept[arm] = {seed: drift_summary(rows)["ent_kept"] for seed, rows in runs[arm]}
    seeds = sorted(set(kept[a]) & set(kept[b]), key=lambda x: int(x.removeprefix("seed")))
    if len(seeds) < 2:
        raise SystemExit(f"{a} and {b} share fewer than 2 seeds in {where}")
    out = [f"| seed | {a}: last 10 / first 10 | {b}: last 10 / first 10 | {a} − {b} |", "|---|---|---|---|"]
    diffs = []
    for seed in seeds:
        diffs.append(kept[a][seed] - kept[b][seed])
        out.append(
            f"| {seed.removeprefix('seed')} | {kept[a][seed]:.2f} | {kept[b][seed]:.2f} | {diffs[-1]:+.2f} |"
        )
    n, mean, sd = len(diffs), statistics.fmean(diffs), statistics.stdev(diffs)
    t = mean / (sd / math.sqrt(n)) if sd > 0 else math.copysign(math.inf, mean)
    out += ["", f"{a} higher in {sum(d > 0 for d in diffs)} of {n} pairs; mean difference {mean:+.2f} ± {sd:.2f}; "
            f"paired t = {t:.2f} ({n - 1} degrees of freedom), two-sided p = {t_two_sided_p(t, n - 1):.3f}"]  # fmt: skip
    return "\n".join(out)


def _phases(text: str) -> list[tuple[int, int]]:
    first_last = [tuple(int(x) for x in part.split("-")) for part in text.split(",")]
    if any(len(p) != 2 or p[0] > p[1] for p in first_last):
        raise SystemExit(f"--phases: expected FIRST-LAST,... with FIRST <= LAST, got {text!r}")
    return first_last  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("runs_dir", type=Path)
    c.add_argument("study")
    c.add_argument("--partial", action="store_true", help="also unfinished runs, as they stand")
    c.add_argument("--arms", help="comma-separated: only these arms")
    t = sub.add_parser("table")
    t.add_argument("study")
    t.add_argument("--floor", type=float, default=0.05)
    t.add_argument("--at", default="10,20,30,50")
    d = sub.add_parser("drift")
    d.add_argument("studies", nargs="+")
    h = sub.add_parser("shaping")
    h.add_argument("studies", nargs="+")
    h.add_argument("--phases", default="1-100,101-400,401-1000", help="FIRST-LAST,... (steps, inclusive)")
    g = sub.add_parser("plot")
    g.add_argument("studies", nargs="+")
    g.add_argument("--out", type=Path, required=True, help="the PNG to write")
    u = sub.add_parser("saturated")
    u.add_argument("studies", nargs="+")
    u.add_argument("--phases", default="1-100,101-400,401-1000", help="FIRST-LAST,... (steps, inclusive)")
    q = sub.add_parser("pair")
    q.add_argument("studies", nargs="+", help="one study, or several of the same setting")
    q.add_argument("arm_a")
    q.add_argument("arm_b")
    args = ap.parse_args()
    if args.cmd == "collect":
        collect(args.runs_dir, args.study, args.partial, args.arms.split(",") if args.arms else None)
    elif args.cmd == "drift":
        print(drift_tables(args.studies))
    elif args.cmd == "shaping":
        print(shaping_tables(args.studies, _phases(args.phases)))
    elif args.cmd == "saturated":
        print(saturated_tables(args.studies, _phases(args.phases)))
    elif args.cmd == "pair":
        print(pair_table(args.studies, args.arm_a, args.arm_b))
    elif args.cmd == "plot":
        print(plot_drift(args.studies, args.out))
    else:
        print(tables(args.study, args.floor, [int(x) for x in args.at.split(",")]))


if __name__ == "__main__":
    main()
