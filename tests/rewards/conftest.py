from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

PLUGIN_SOURCE = textwrap.dedent(
    '''
    import os
    import time


    def red_image(response, record):
        """1.0 if the first image's top-left pixel is red: a reward that looks at the image."""
        r, g, b = record["images"][0].convert("RGB").getpixel((0, 0))
        return 1.0 if (r > 200 and g < 50 and b < 50) == (response == "red") else 0.0


    def raises(response, record):
        if response == "boom":
            raise RuntimeError("plug-in exploded on purpose")
        return 1.0


    def hangs(response, record):
        if response == "hang":
            while True:
                pass
        return 0.5


    def hangs_in_c(response, record):
        if response == "hang":
            return float(pow(10, 10**9) > 0)  # one C call, holds the GIL for minutes
        return 0.5


    def dies(response, record):
        if response == "die":
            os._exit(3)
        return 1.0


    def out_of_range(response, record):
        return float(len(response))


    def with_extras(response, record):
        if response == "none":
            return None
        return {"overall": 1.0, "length": float(len(response)), "has_digit": any(c.isdigit() for c in response)}


    def bad_dict(response, record):
        return {"score": 1.0}


    def bad_type(response, record):
        return "high"
    '''
)


@pytest.fixture(scope="session")
def plugin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugins") / "my_rewards.py"
    path.write_text(PLUGIN_SOURCE)
    return path
