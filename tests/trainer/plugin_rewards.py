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
