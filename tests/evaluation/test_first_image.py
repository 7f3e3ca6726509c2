"""`readers.first_image`: which field an adapter's image comes from, and the error when none does."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from mssr.evaluation.benchmarks.readers import BenchmarkDataError, first_image


def test_first_filled_key_wins_and_paths_resolve_under_root(tmp_path: Path):
    embedded = Image.new("RGB", (4, 4), (1, 2, 3))
    both = first_image(
        {"decoded_image": embedded, "image": "a.png"}, ("decoded_image", "image"), tmp_path, "x"
    )
    assert both.image is embedded
    path_only = first_image(
        {"decoded_image": None, "image": "a.png"}, ("decoded_image", "image"), tmp_path, "x"
    )
    assert path_only.path == tmp_path / "a.png"


def test_base64_only_for_the_named_keys(tmp_path: Path):
    import base64
    import io

    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, format="PNG")
    b64 = base64.b64encode(buf.getvalue()).decode()
    assert (
        first_image({"image": b64}, ("image",), tmp_path, "x", base64_keys=("image",)).data == buf.getvalue()
    )
    assert first_image({"image": "b.png"}, ("image",), tmp_path, "x").path == tmp_path / "b.png"


@pytest.mark.parametrize("row", [{}, {"image": None, "image_path": ""}, {"image": {"path": None}}])
def test_no_image_names_the_item_and_every_key(tmp_path: Path, row):
    with pytest.raises(BenchmarkDataError, match=r"item 7: no image \('image' or 'image_path'\)"):
        first_image(row, ("image", "image_path"), tmp_path, "data.json: row 3 item 7")
