"""The dataset reader: key conventions, image encodings, and clear errors (or counted skips) on bad rows."""

from __future__ import annotations

import base64
import io
import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from mssr.data import Columns, DataError, load_records, read_jsonl


def png_bytes(colour=(255, 0, 0), size=(8, 6), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, format="PNG")
    return buf.getvalue()


def write_dataset(
    root: Path, rows: list, split: str = "train", raw_lines: dict[int, str] | None = None
) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "images" / "red.png").write_bytes(png_bytes())
    (root / "images" / "gray.png").write_bytes(png_bytes(colour=128, mode="L"))
    lines = [json.dumps(r) for r in rows]
    for k, text in (raw_lines or {}).items():  # k: 1-based line number to replace
        lines[k - 1] = text
    path = root / f"{split}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = {"id": "a", "images": ["images/red.png"], "problem": "<image>What color?", "answer": "red"}


def test_reads_problem_and_question_keys_and_infers_types(tmp_path):
    write_dataset(
        tmp_path,
        [
            GOOD,
            {"id": "b", "image": "images/gray.png", "question": "How many? <image>", "answer": 3},
            {"id": "c", "images": [], "question": "Pi?", "answer": "3.14"},
            {
                "id": "d",
                "images": ["images/red.png", "images/gray.png"],
                "problem": "<image> vs <image> which?",
                "answer": "B",
                "choices": ["left", "right"],
                "family": "mine",
            },
        ],
    )
    recs = load_records(tmp_path, "train")
    assert [r.id for r in recs] == ["a", "b", "c", "d"]
    a, b, c, d = recs
    assert (a.question, a.answer, a.answer_type, a.choices) == ("What color?", "red", "text", None)
    assert a.images[0].mode == "RGB" and a.images[0].getpixel((0, 0)) == (255, 0, 0)
    assert (b.question, b.answer, b.answer_type) == ("How many?", "3", "integer")
    assert b.images[0].mode == "RGB" and b.images[0].getpixel((1, 1)) == (128, 128, 128)
    assert (c.images, c.answer_type) == ([], "float")
    assert (d.question, d.answer, d.answer_type, d.choices) == ("vs which?", "B", "choice", ["left", "right"])
    cols = d.to_columns()
    assert cols["family"] == "mine" and cols["answer"] == "B" and cols["choices"] == ["left", "right"]
    assert len(cols["images"]) == 2


def test_embedded_images_base64_bytes_and_parquet(tmp_path):
    raw = png_bytes(colour=(0, 0, 255))
    b64 = base64.b64encode(raw).decode()
    rows = [
        {"id": "uri", "images": [f"data:image/png;base64,{b64}"], "problem": "<image>q", "answer": "1"},
        {"id": "dict", "images": [{"bytes": b64, "path": None}], "problem": "<image>q", "answer": "2"},
        {
            "id": "path",
            "images": [{"bytes": None, "path": "images/red.png"}],
            "problem": "<image>q",
            "answer": "3",
        },
    ]
    write_dataset(tmp_path, rows)
    recs = load_records(tmp_path / "train.jsonl")
    assert [r.images[0].getpixel((0, 0)) for r in recs] == [(0, 0, 255), (0, 0, 255), (255, 0, 0)]

    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "problem": ["<image>How many?"],
            "answer": ["4"],
            "images": [[{"bytes": raw, "path": "x.png"}]],
        }
    )
    pq.write_table(table, tmp_path / "test.parquet")
    (rec,) = load_records(tmp_path, "test")
    assert rec.images[0].getpixel((2, 2)) == (0, 0, 255) and rec.answer == "4" and rec.id == "test-1"


def test_chat_message_prompts_and_option_text_answers(tmp_path):
    write_dataset(
        tmp_path,
        [
            {
                "prompt": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which one?"}]},
                ],
                "images": ["images/red.png"],
                "answer": "dog",
                "choices": ["cat", "dog"],
            },
        ],
    )
    (rec,) = load_records(tmp_path, "train")
    assert rec.question == "Which one?" and rec.answer == "B" and rec.extra["answer_text"] == "dog"


def test_generic_user_jsonl_adapter(tmp_path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "p.png").write_bytes(png_bytes())
    f = tmp_path / "mine.jsonl"
    f.write_text(
        json.dumps({"uid": 7, "q": "Count them", "img": "p.png", "label": 5, "kind": "integer"}) + "\n"
    )
    (rec,) = read_jsonl(
        f,
        question_key="q",
        images_key="img",
        answer_key="label",
        id_key="uid",
        answer_type_key="kind",
        image_root=tmp_path / "pics",
    )
    assert (rec.id, rec.question, rec.answer, rec.answer_type, len(rec.images)) == (
        "7",
        "Count them",
        "5",
        "integer",
        1,
    )
    with pytest.raises(DataError, match=r"mine\.jsonl: line 1: no question text"):
        read_jsonl(f, question_key="question", image_root=tmp_path / "pics")


@pytest.mark.parametrize(
    ("row", "raw", "pattern"),
    [
        (
            {**GOOD, "images": ["images/corrupt.png"]},
            None,
            r"train\.jsonl: line 2: image 0 .*corrupt\.png: corrupt",
        ),
        (
            {**GOOD, "images": ["images/nope.png"]},
            None,
            r"train\.jsonl: line 2: image 0 .*nope\.png: missing image",
        ),
        ({k: v for k, v in GOOD.items() if k != "answer"}, None, r"train\.jsonl: line 2: row has no answer"),
        ({**GOOD, "answer": "  "}, None, r"line 2: row has no answer"),
        ({**GOOD, "answer": None}, None, r"line 2: row has no answer"),
        (GOOD, '{"id": "b", "problem": "x", "answer": ', r"train\.jsonl: line 2: malformed JSON"),
        (GOOD, "[1, 2]", r"line 2: expected a JSON object, got list"),
        (
            {**GOOD, "problem": "<image><image>two?"},
            None,
            r"line 2: 2 <image> placeholder\(s\) .* but 1 image",
        ),
        ({**GOOD, "choices": ["x", "y"], "answer": "z"}, None, r"line 2: answer 'z' is neither a letter A-B"),
        ({**GOOD, "answer_type": "complex"}, None, r"line 2: answer_type 'complex' is not one of"),
        ({**GOOD, "images": [{"bytes": "%%%not-base64"}]}, None, r"line 2: image 0: invalid base64"),
        (GOOD, None, r"line 2: duplicate id 'a'"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, raw, pattern):
    write_dataset(tmp_path, [GOOD, row, {**GOOD, "id": "z"}], raw_lines={2: raw} if raw else None)
    (tmp_path / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    with pytest.raises(DataError, match=pattern):
        load_records(tmp_path, "train")


def test_truncated_png_is_reported(tmp_path):
    write_dataset(tmp_path, [{**GOOD, "images": ["images/half.png"]}])
    (tmp_path / "images" / "half.png").write_bytes(png_bytes(size=(64, 64))[:60])
    with pytest.raises(DataError, match=r"line 1: image 0 .*half\.png: corrupt or unreadable"):
        load_records(tmp_path, "train")


def test_skip_mode_counts_and_logs_bad_rows(tmp_path, caplog):
    rows = [
        GOOD,
        {**GOOD, "id": "b", "images": ["images/corrupt.png"]},
        {"id": "c", "problem": "<image>q", "images": ["images/red.png"]},
        GOOD,  # placeholder for a malformed line
        {**GOOD, "id": "e"},
        {**GOOD, "id": "f", "images": ["images/missing.png"]},
    ]
    write_dataset(tmp_path, rows, raw_lines={4: "{not json"})
    (tmp_path / "images" / "corrupt.png").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="mssr.data.loader"):
        recs = load_records(tmp_path, "train", on_error="skip")
    assert [r.id for r in recs] == ["a", "e"]
    assert recs.n_skipped == 4
    assert [s.split(": ")[1] for s in recs.skipped] == ["line 2", "line 3", "line 4", "line 6"]
    assert "skipped 4 bad row(s) of 6" in caplog.text
    with pytest.raises(ValueError, match="on_error"):
        load_records(tmp_path, "train", on_error="ignore")


def test_split_resolution(tmp_path):
    write_dataset(tmp_path, [GOOD], split="validation")
    write_dataset(tmp_path, [GOOD], split="train")
    assert len(load_records(tmp_path, "val")) == 1  # alias
    with pytest.raises(
        DataError, match=r"no file for split 'test'; found \['train.jsonl', 'validation.jsonl'\]"
    ):
        load_records(tmp_path, "test")
    with pytest.raises(DataError, match="name a split"):
        load_records(tmp_path)
    with pytest.raises(DataError, match="no such dataset"):
        load_records(tmp_path / "absent", "train")
    with pytest.raises(DataError, match="asked for split 'test'"):
        load_records(tmp_path / "train.jsonl", "test")


def test_mathvista_style_json_dict(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.png").write_bytes(png_bytes())
    data = {
        "1": {
            "question": "Which?",
            "image": "images/1.png",
            "choices": ["2", "7"],
            "answer": "7",
            "answer_type": "integer",
            "question_type": "multi_choice",
        },
        "2": {
            "question": "Value?",
            "image": "images/1.png",
            "choices": None,
            "answer": "1.5",
            "answer_type": "float",
        },
    }
    (tmp_path / "testmini.json").write_text(json.dumps(data))
    cols = Columns(answer_type=())  # MathVista's answer_type describes the option text; ignore it
    one, two = load_records(tmp_path / "testmini.json", columns=cols)
    assert (one.id, one.answer, one.answer_type, one.extra["answer_text"]) == ("1", "B", "choice", "7")
    assert (two.id, two.answer, two.answer_type, two.choices) == ("2", "1.5", "float", None)


def _bomb_png(side: int = 20000) -> bytes:
    """A tiny PNG whose header claims side × side pixels (IHDR rewritten, CRC recomputed)."""
    import struct
    import zlib

    raw = bytearray(png_bytes(size=(8, 8)))
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4 : ihdr + 12] = struct.pack(">II", side, side)
    raw[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr : ihdr + 17])))
    return bytes(raw)


def test_decompression_bomb_is_a_bad_row_raised_or_skipped(tmp_path):
    path = write_dataset(tmp_path, [GOOD, {**GOOD, "id": "b", "images": ["images/bomb.png"]}])
    (tmp_path / "images" / "bomb.png").write_bytes(_bomb_png())
    with pytest.raises(
        DataError, match=r"train.jsonl: line 2: image 0 .*bomb.png: refused as a decompression bomb"
    ):
        load_records(path)
    kept = load_records(path, on_error="skip")
    assert [r.id for r in kept] == ["a"] and len(kept.skipped) == 1


def test_large_images_are_held_downscaled(tmp_path):
    from mssr.data.loader import MAX_IMAGE_PIXELS

    buf = io.BytesIO()
    Image.new("RGB", (4000, 4000), (200, 10, 10)).save(buf, format="JPEG", quality=80)
    row = {**GOOD, "images": [{"bytes": base64.b64encode(buf.getvalue()).decode()}]}
    (rec,) = load_records(write_dataset(tmp_path, [row]))
    w, h = rec.images[0].size
    assert w * h <= MAX_IMAGE_PIXELS and abs(w - h) <= 1 and w >= 3000  # aspect kept, still large
    assert rec.images[0].getpixel((w // 2, h // 2))[0] > 150  # the content, not a blank


def test_a_corrupt_parquet_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "train.parquet"
    bad.write_bytes(b"PAR1" + b"\x00garbage" * 100)
    for on_error in ("raise", "skip"):
        with pytest.raises(DataError, match=r"train.parquet: not a readable parquet file"):
            load_records(bad, on_error=on_error)
