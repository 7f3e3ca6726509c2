"""A reward with signal for a random policy: responses of even length score 1 (used to compare accuracies)."""


def length_parity(response: str, record: dict) -> float:
    return float(len(response) % 2 == 0)
