"""A reward with signal for a random tiny policy (tests only): it depends on the sampled text."""


def length_parity(response: str, record: dict) -> float:
    """1 when the response has an even number of characters: about half the samples."""
    return float(len(response) % 2 == 0)
