"""Rewards with signal for a random tiny policy (tests only): they depend on the sampled text."""


def length_parity(response: str, record: dict) -> float:
    """1 when the response has an even number of characters: about half the samples, varying per sample."""
    return float(len(response) % 2 == 0)


def raises_on_odd(response: str, record: dict) -> float:
    """Raises for odd-length responses (a buggy user reward): those samples must be excluded, not crash."""
    if len(response) % 2:
        raise RuntimeError("reward bug")
    return float(len(response) % 4 == 0)


def none_on_odd(response: str, record: dict) -> float | None:
    """``None`` = no reward for this sample (excluded from baselines and the loss)."""
    return None if len(response) % 2 else float(len(response) % 4 == 0)


def always_raises(response: str, record: dict) -> float:
    """A reward that is broken for every sample (the run must stop with a clear error, not learn nothing)."""
    raise ValueError("the reward's parser is broken")


def sigterm_on_rank1(response: str, record: dict) -> float:
    """``length_parity``; on rank 1 of a torchrun job it sends SIGTERM to its own process, once (a scheduler that
    signals one rank): every rank must still stop after the same step and checkpoint together."""
    import os
    import signal

    flag = os.environ.get("MSSR_TEST_SIGNAL_FLAG")
    if os.environ.get("RANK") == "1" and flag and not os.path.exists(flag):
        open(flag, "w").close()
        os.kill(os.getpid(), signal.SIGTERM)
    return float(len(response) % 2 == 0)
