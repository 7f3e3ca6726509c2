"""Stable prompt keys for the value tracker: a dataset id when there is one, else a content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def prompt_key(
    text: str, images: Sequence[bytes] = (), *, dataset_id: str | int | None = None, namespace: str = ""
) -> str:
    """``"id:<namespace>/<id>"`` when a dataset id exists, else ``"sha:<sha256 of text and image bytes>"``.

    Image bytes should be a canonical encoding (e.g. the file's bytes or raw RGB pixels with the size);
    two prompts with the same text and different images get different keys, and image order matters.
    """
    if dataset_id is not None and str(dataset_id) != "":
        return f"id:{namespace}/{dataset_id}" if namespace else f"id:{dataset_id}"
    h = hashlib.sha256()
    h.update(b"text\x00")
    h.update(text.encode("utf-8", errors="surrogatepass"))
    for i, img in enumerate(images):
        if not isinstance(img, (bytes, bytearray, memoryview)):
            raise TypeError(f"image {i} must be bytes (a canonical encoding), got {type(img).__name__}")
        h.update(b"\x00image%d\x00" % i)
        h.update(len(img).to_bytes(8, "little"))
        h.update(bytes(img))
    return "sha:" + h.hexdigest()[:32]
