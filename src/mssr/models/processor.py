"""The Qwen-VL processors without their video half, and the image processor for small images.

``Qwen2VLProcessor`` / ``Qwen2_5_VLProcessor`` require a video processor, and every video processor in
transformers needs torchvision, which does not import beside the CPU torch wheel (docs/platform.md "Stack").
mssr only feeds images, so these subclasses drop the video processor and keep everything else — token
expansion of ``<|image_pad|>``, ``mm_token_type_ids``, chat template, save/load — from the family's class.
They are used for real checkpoints too, so tiny and real policies go through one code path.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen3VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from mssr.io import write_json_atomic

VIDEO_PROCESSOR_FILE = "video_preprocessor_config.json"
# Image-processor fields a Qwen-VL video processor shares (vLLM's Qwen-VL processors load one even for image-only
# use, and transformers refuses a directory without its config file).
_VIDEO_KEYS = (
    "patch_size",
    "temporal_patch_size",
    "merge_size",
    "image_mean",
    "image_std",
    "do_convert_rgb",
    "do_normalize",
    "do_rescale",
    "rescale_factor",
    "do_resize",
    "size",
    "min_pixels",
    "max_pixels",
    "resample",
)


def write_video_processor_config(
    directory: str | Path, image_processor: dict, video_processor_type: str = "Qwen2VLVideoProcessor"
) -> Path:
    """Write ``video_preprocessor_config.json`` into ``directory``, derived from the image processor's settings
    (``image_processor``: its ``to_dict()``), unless the file exists. A saved policy then loads in stock loaders
    that insist on a video processor (vLLM). Returns the file's path."""
    target = Path(directory) / VIDEO_PROCESSOR_FILE
    if target.is_file():
        return target
    video = {k: image_processor[k] for k in _VIDEO_KEYS if image_processor.get(k) is not None}
    video["video_processor_type"] = video_processor_type
    target.write_text(json.dumps(video, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


class _ImageOnlyMixin:
    """Construct and save the family processor with ``image_processor`` and ``tokenizer`` only."""

    family_processor_class: str = ""
    family_video_processor_class: str = "Qwen2VLVideoProcessor"

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=None,
            chat_template=chat_template,
            **kwargs,
        )

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        files = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        # Record the family's processor class, so that stock loaders (AutoProcessor with torchvision, vLLM)
        # see a standard Qwen-VL directory; mssr.models.load_policy picks the image-only class itself.
        for name in ("processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
            path = Path(save_directory) / name
            if path.is_file():
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("processor_class") == type(self).__name__:
                    data["processor_class"] = self.family_processor_class
                    write_json_atomic(path, data, sort_keys=True)
        image_processor = getattr(self, "image_processor", None)
        if image_processor is not None:  # what vLLM needs to load the directory (docs/rollout.md)
            write_video_processor_config(
                save_directory, image_processor.to_dict(), self.family_video_processor_class
            )
        return files


class Qwen2VLImageOnlyProcessor(_ImageOnlyMixin, Qwen2VLProcessor):
    """``Qwen2VLProcessor`` for images and text only (no torchvision needed)."""

    family_processor_class = "Qwen2VLProcessor"


class Qwen2_5_VLImageOnlyProcessor(_ImageOnlyMixin, Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` for images and text only (no torchvision needed)."""

    family_processor_class = "Qwen2_5_VLProcessor"


class Qwen3VLImageOnlyProcessor(_ImageOnlyMixin, Qwen3VLProcessor):
    """``Qwen3VLProcessor`` for images and text only (no torchvision needed); Qwen3-VL MoE uses it too."""

    family_processor_class = "Qwen3VLProcessor"
    family_video_processor_class = "Qwen3VLVideoProcessor"


PROCESSOR_CLASSES: dict[str, type] = {
    "qwen2_vl": Qwen2VLImageOnlyProcessor,
    "qwen2_5_vl": Qwen2_5_VLImageOnlyProcessor,
    "qwen3_vl": Qwen3VLImageOnlyProcessor,
    "qwen3_vl_moe": Qwen3VLImageOnlyProcessor,
}


def build_image_processor(
    *,
    patch_size: int,
    merge_size: int,
    min_pixels: int,
    max_pixels: int,
    temporal_patch_size: int = 2,
) -> Qwen2VLImageProcessorPil:
    """The Qwen2-VL image processor (PIL backend). Images are resized so that height and width are multiples
    of ``patch_size * merge_size`` and the pixel count lies in [min_pixels, max_pixels] (EasyR1's knobs); an
    H×W image then gives (H/patch)·(W/patch)/merge² image tokens."""
    factor = patch_size * merge_size
    if min_pixels < factor * factor:
        raise ValueError(f"min_pixels={min_pixels} is below one merged patch ({factor}x{factor})")
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels={max_pixels} < min_pixels={min_pixels}")
    return Qwen2VLImageProcessorPil(
        patch_size=patch_size,
        merge_size=merge_size,
        temporal_patch_size=temporal_patch_size,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
    )


def set_pixel_range(image_processor, *, min_pixels: int | None = None, max_pixels: int | None = None) -> None:
    """Change an image processor's [min_pixels, max_pixels] in place (both Qwen2-VL backends store them in
    ``size`` as shortest_edge / longest_edge)."""
    size = dict(image_processor.size)
    if min_pixels is not None:
        size["shortest_edge"] = int(min_pixels)
    if max_pixels is not None:
        size["longest_edge"] = int(max_pixels)
    if size["longest_edge"] < size["shortest_edge"]:
        raise ValueError(f"max_pixels={size['longest_edge']} < min_pixels={size['shortest_edge']}")
    image_processor.size = (
        type(image_processor.size)(**size) if not isinstance(image_processor.size, dict) else size
    )
    for name, key in (("min_pixels", "shortest_edge"), ("max_pixels", "longest_edge")):
        if hasattr(image_processor, name):
            setattr(image_processor, name, size[key])
