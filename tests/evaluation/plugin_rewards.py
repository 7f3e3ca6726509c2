"""A reward with signal for a random policy (used to compare accuracies between code paths): 1 when the sum of
the response's character codes is even."""


def char_parity(response: str, record: dict) -> float:
    return float(sum(map(ord, response)) % 2 == 0)
