"""How many uncertain tokens a reasoning-world response carries, and which readings a policy gets right.

    python docs/results/reasoning/readings.py POLICY_DIR DATASET_DIR [--split val] [--n 200] [--seed 0]

Samples one response per item at T = 1 (top-k off, top-p 1, vision tokens suppressed, the SFT evaluation's
engine) and prints, per family: accuracy (``ExactBoxedMatch``), the rate at which the values read in the
worked steps (the numbers/colours before the first full stop) all match the gold solution, the mean response
length, and the mean number of response tokens whose full-vocabulary entropy exceeds 0.1 / 0.5 nats
("uncertain tokens"). ``--instruction default`` if the policy was trained with the paper's instruction.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict

import torch

from mssr.data import load_records
from mssr.models import load_policy
from mssr.rollout.engine import HFRolloutEngine
from mssr.rollout.logprobs import compute_logprobs
from mssr.rollout.prompting import records_to_prompts
from mssr.sft.evaluate import ExactBoxedMatch


def readings(text: str) -> str:
    """The part of the worked steps that reads the image: ``<think>`` up to the first full stop."""
    m = re.search(r"<think>(.*?)\.", text)
    return m.group(1).strip() if m else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("policy")
    ap.add_argument("data")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--instruction", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    policy = load_policy(args.policy)
    policy.model.eval()
    records = list(load_records(args.data, args.split))[: args.n]
    prompts = records_to_prompts(records, policy.processor, instruction=args.instruction)
    engine = HFRolloutEngine(policy.model, policy.processor)
    batch = engine.generate(prompts, max_new_tokens=64, batch_size=64, seed=args.seed)
    full = compute_logprobs(policy.model, batch, entropy="full").entropy
    verdict = ExactBoxedMatch()
    stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    tok = policy.tokenizer
    for i, rec in enumerate(records):
        mask = batch.response_mask[i] > 0
        ids = batch.response_ids[i][mask].tolist()
        ended = not bool(batch.truncated[i])
        text = tok.decode(ids[:-1] if ended else ids, skip_special_tokens=False)  # the end token dropped
        ent = full[i][mask]
        s = stats[str(rec.extra.get("family"))]
        s["n"] += 1
        s["correct"] += verdict(text, rec.to_columns()) if ended else 0.0
        s["readings_right"] += readings(text) == readings(str(rec.extra["solution"]))
        s["tokens"] += int(mask.sum())
        s["uncertain_0.1"] += int((ent > 0.1).sum())
        s["uncertain_0.5"] += int((ent > 0.5).sum())
        s["entropy_sum"] += float(ent.sum())
    out = {}
    for fam, s in sorted(stats.items()):
        n = s["n"]
        out[fam] = {
            "n": int(n),
            "accuracy": round(s["correct"] / n, 3),
            "readings_all_right": round(s["readings_right"] / n, 3),
            "response_tokens": round(s["tokens"] / n, 1),
            "tokens_entropy_gt_0.1": round(s["uncertain_0.1"] / n, 2),
            "tokens_entropy_gt_0.5": round(s["uncertain_0.5"] / n, 2),
            "mean_full_entropy": round(s["entropy_sum"] / s["tokens"], 4),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
