"""A toy of entropy shaping's cumulative effect on entropy: why MSSR with `full` shaping loses its entropy faster
than no shaping at all (docs/results/regime/README.md "Why `full` shaping loses the entropy").

The `shapes` runs found MSSR with `full` shaping losing its entropy fastest (0.17 of its start over 1,000 steps),
faster than no shaping (MVSR, 0.62), while `sampled` shaping holds it (1.35) — although docs/algorithms.md derives
that `full`'s ψ has no first-order pull on a position's distribution. This toy asks which property of ψ drives the
fall, with knock-outs that cost seconds instead of hours.

The toy: a tabular softmax policy, one logit row per (context, position). Each response has ``positions`` tokens;
only the last one (the answer) is rewarded (1 for the context's correct token), so every other position is *free*:
its tokens carry no reward signal, as most tokens of a real response. Per step, ``batch`` contexts each get one
rollout (single rollout), the library's Beta tracker gives the baseline, `single_rollout_advantage` normalises over
the batch, `shape_advantages` adds ψ, and one policy-gradient step (ratio 1: the first PPO update) is taken with
Adam. What is reported is the mean full entropy of the free positions, relative to its start.

Arms (ψ = min(α·H, |Â|/κ), κ = 2): ``none`` (MVSR), ``sampled`` (H = −p log p of the sampled token, α = 0.4),
``full`` (H = the position's full entropy, α = 0.4), and knock-outs: ``full_a0.1`` (a quarter of the bonus),
``sampled_a1.6`` (four times it), ``constant`` (H ≡ 1, α = 0.15: a bonus that does not depend on the entropy),
``sign`` (H ≡ 1, α = ∞: ψ = |Â|/κ everywhere — positive tokens weighted 1.5, negative 0.5, no bonus beyond that);
and two without shaping: ``scaled`` (Ã = 1.25·Â: a larger step with the same mean) and ``bias`` (Ã = Â + 0.3: a
reward-independent offset of ψ's size, with no dependence on the entropy or on |Â|); and ``full_centred`` /
``sampled_centred``: ψ less its batch mean (the same differences between tokens, no net offset; a centred ψ may
flip a small advantage's sign, so this is a knock-out, not a method). Reported per arm: the mean
offset Ã − Â per token (ψ's mean for the shaping arms) and the weights shaping gives positive / negative tokens
(`gain_pos` / `gain_neg` of `shape_advantages`).

Usage: ``python docs/results/regime/shaping_toy.py [--steps 2000] [--seeds 5] [--optim adam|sgd] [--lr 0.01]``
(about 6 minutes on one core for the defaults).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass

import torch

from mssr.algos import BetaTracker, entropy_from_logits, sampled_token_entropy, shape_advantages
from mssr.algos.advantages import single_rollout_advantage


@dataclass(frozen=True)
class Arm:
    """What an arm does to the batch-normalised advantages Â: shaping ψ = min(α·H, |Â|/κ) with H from ``entropy``
    (``sampled``, ``full``, or ``unit``: H ≡ 1; None: no shaping), added with Â's sign (``symmetric``) or not,
    optionally less ψ's batch mean (``centred``); then Ã ← ``scale`` · Ã + ``bias``."""

    entropy: str | None = None
    alpha: float = 0.4
    centred: bool = False
    symmetric: bool = False
    scale: float = 1.0
    bias: float = 0.0


ARMS: dict[str, Arm] = {
    "none": Arm(),
    "sampled": Arm("sampled"),
    "full": Arm("full"),
    "full_a0.1": Arm("full", alpha=0.1),
    "sampled_a1.6": Arm("sampled", alpha=1.6),
    "constant": Arm("unit", alpha=0.15),
    "sign": Arm("unit", alpha=1e9),  # α·1 always above the cap: ψ = |Â|/κ
    "scaled": Arm(scale=1.25),
    "bias": Arm(bias=0.3),
    "full_centred": Arm("full", centred=True),
    "sampled_centred": Arm("sampled", centred=True),
    "full_symmetric": Arm("full", symmetric=True),
}


def make_task(
    seed: int, contexts: int, positions: int, vocab: int, forks: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial logits ``[C, T, V]`` and the correct answer per context. The answer position: Gaussian logits with
    +2 on the correct token (p ≈ 0.2–0.3). Free positions: scaled Gaussian logits, so entropies range from peaked
    to diffuse; or, with ``forks`` > 0, a language model's shape — near-deterministic positions (one token +8 over
    a unit Gaussian tail) except a share ``forks`` of two-way forks (two tokens +8), where the entropy is."""
    g = torch.Generator().manual_seed(10_000 + seed)
    logits = 3.0 * torch.randn(contexts, positions, vocab, generator=g)
    logits[:, -1] = torch.randn(contexts, vocab, generator=g)
    correct = torch.randint(vocab, (contexts,), generator=g)
    logits[torch.arange(contexts), -1, correct] += 2.0
    if forks > 0:
        free = torch.randn(contexts, positions - 1, vocab, generator=g)
        order = torch.rand(contexts, positions - 1, vocab, generator=g).argsort(-1)
        free.scatter_add_(-1, order[..., :1], torch.full((contexts, positions - 1, 1), 8.0))
        fork = (torch.rand(contexts, positions - 1, generator=g) < forks).float()[..., None]
        free.scatter_add_(-1, order[..., 1:2], 8.0 * fork)
        logits[:, :-1] = free
    return logits, correct


def run(arm: str, seed: int, args: argparse.Namespace) -> dict[str, list[float]]:
    logits0, correct = make_task(seed, args.contexts, args.positions, args.vocab, args.forks)
    theta = torch.nn.Parameter(logits0.clone())
    opt = (
        torch.optim.Adam([theta], lr=args.lr)
        if args.optim == "adam"
        else torch.optim.SGD([theta], lr=args.lr)
    )
    g = torch.Generator().manual_seed(seed)
    keys = [str(c) for c in range(args.contexts)]
    tracker = BetaTracker(rho_min=args.rho)

    def sample(ctx: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(theta.detach()[ctx], -1)  # [B, T, V]
        return torch.multinomial(probs.reshape(-1, args.vocab), 1, generator=g).reshape(
            len(ctx), args.positions
        )

    all_ctx = torch.arange(args.contexts)
    first = sample(all_ctx)  # the tracker's initialisation: one rollout per context
    tracker.init_from_outcomes({k: [float(first[c, -1] == correct[c])] for c, k in enumerate(keys)})
    spec = ARMS[arm]
    entropy_of = {
        "sampled": lambda lp_a, ctx: sampled_token_entropy(lp_a.detach()),
        "full": lambda lp_a, ctx: entropy_from_logits(theta.detach()[ctx]),
        "unit": lambda lp_a, ctx: torch.ones_like(lp_a),
    }
    out: dict[str, list[float]] = {
        "entropy": [],
        "accuracy": [],
        "offset": [],
        "gain_pos": [],
        "gain_neg": [],
    }
    mask = torch.ones(args.batch, args.positions)
    for step in range(args.steps + 1):
        with torch.no_grad():
            lp_all = torch.log_softmax(theta, -1)
            out["entropy"].append(float(entropy_from_logits(theta[:, :-1]).mean()))
            out["accuracy"].append(float(lp_all[all_ctx, -1, correct].exp().mean()))
        if step == args.steps:
            break
        ctx = torch.randperm(args.contexts, generator=g)[: args.batch]
        acts = sample(ctx)
        rewards = (acts[:, -1] == correct[ctx]).float()
        adv = single_rollout_advantage(
            rewards, mask, baselines=tracker.baseline([keys[c] for c in ctx.tolist()])
        ).advantages
        lp = torch.log_softmax(theta[ctx], -1)  # [B, T, V]
        lp_a = lp.gather(-1, acts[..., None]).squeeze(-1)
        unshaped = adv
        if spec.entropy is not None:
            h = entropy_of[spec.entropy](lp_a, ctx)
            shaped = shape_advantages(adv, h, mask, alpha=spec.alpha, kappa=2.0, symmetric=spec.symmetric)
            adv = shaped.advantages
            if spec.centred:  # the same relative bonus between tokens, without its mean
                adv = adv - shaped.psi.mean() * mask
            out["gain_pos"].append(shaped.metrics["gain_pos"])
            out["gain_neg"].append(shaped.metrics["gain_neg"])
        adv = adv * spec.scale + spec.bias * mask
        out["offset"].append(float((adv - unshaped).mean()))
        loss = -(adv * lp_a).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        tracker.update([keys[c] for c in ctx.tolist()], rewards, args.rho)
    return out


def _ms(xs: list[float]) -> str:
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--contexts", type=int, default=64)
    p.add_argument("--positions", type=int, default=8)
    p.add_argument("--vocab", type=int, default=16)
    p.add_argument(
        "--forks", type=float, default=0.0, help="free positions: share of two-way forks (0: Gaussian)"
    )
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--rho", type=float, default=0.9, help="the tracker's forgetting factor (fixed)")
    p.add_argument("--optim", choices=("adam", "sgd"), default="adam")
    p.add_argument("--arms", default=",".join(ARMS))
    args = p.parse_args(argv)
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        p.error(f"unknown arm {unknown[0]!r}; choose from {', '.join(ARMS)}")
    torch.set_num_threads(1)
    marks = sorted({0, args.steps // 4, args.steps // 2, args.steps})
    print(
        f"toy: {args.contexts} contexts × {args.positions} positions × {args.vocab} tokens, batch {args.batch}, "
        f"{args.optim} lr {args.lr}, {args.steps} steps, seeds 0-{args.seeds - 1}\n"
    )
    head = " | ".join(f"free-position entropy @{m}" for m in marks)
    print(f"| arm | {head} | last / first | answer accuracy @{args.steps} | mean offset Ã − Â | gain + / − |")
    print("|---|" + "---|" * (len(marks) + 4))
    for arm in arms:
        runs = [run(arm, s, args) for s in range(args.seeds)]
        ents = [_ms([r["entropy"][m] for r in runs]) for m in marks]
        ratio = _ms([r["entropy"][-1] / r["entropy"][0] for r in runs])
        acc = _ms([r["accuracy"][-1] for r in runs])
        offset = _ms([statistics.mean(r["offset"]) for r in runs])
        if runs[0]["gain_pos"]:
            gains = (
                f"{statistics.mean(statistics.mean(r['gain_pos']) for r in runs):.2f} / "
                f"{statistics.mean(statistics.mean(r['gain_neg']) for r in runs):.2f}"
            )
        else:
            gains = "—"
        print(f"| {arm} | {' | '.join(ents)} | {ratio} | {acc} | {offset} | {gains} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
