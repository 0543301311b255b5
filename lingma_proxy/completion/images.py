"""Whether the newest turn's images can go upstream (docs/features.md §6a, docs/protocol.md §9, §11.4).

The agent dialect takes them as `prompt` parts; the classic dialect uploads each (`image/upload`, with
`lingma.classic_images: auto`) and names the URLs on the ask. Either way only for a model the account
lists with `isVl`. Anything else is a clear 400 before an upstream slot is taken.
"""

from __future__ import annotations

from collections.abc import Collection

from ..errors import bad_request
from ..model import Image, ModelInfo
from ..upstream.dialects import IMAGE_NOT_SUPPORTED

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # per image, as the plugin's contract has it (§11.4)
MAX_CLASSIC_IMAGES = 5  # uploads are one at a time before the ask: a bound on how long that may take


def check_images_forwardable(
    images: list[Image], model: ModelInfo, dialect_setting: str, settled_dialects: Collection[str], classic_images: str
) -> None:
    """Raise a 400 unless every image can be forwarded: the model takes images, each arrived as bytes or
    a URL, and, where the classic dialect may serve (an instance not settled yet may be either), it
    uploads them (lingma.classic_images) within its limits."""
    only_agent = dialect_setting == "acp" or (bool(settled_dialects) and "classic" not in settled_dialects)
    only_classic = dialect_setting == "classic" or (bool(settled_dialects) and "acp" not in settled_dialects)
    if only_classic and classic_images == "off":
        raise bad_request(
            "Images need Lingma's agent dialect (the desktop app's runtime), or lingma.classic_images: auto; "
            "this proxy's Lingma speaks classic chat/ask with image upload off.",
            param="messages",
            code=IMAGE_NOT_SUPPORTED,
        )
    if not model.is_vision:
        raise bad_request(
            f"Model {model.id} does not take images; choose a model whose Lingma entry has isVl.",
            param="model",
            code=IMAGE_NOT_SUPPORTED,
        )
    if any(not (image.data or image.url) for image in images):
        raise bad_request(
            "An image arrived without its bytes or a URL (e.g. a file_id); send it inline as base64.",
            param="messages",
            code=IMAGE_NOT_SUPPORTED,
        )
    if not only_agent:
        _check_uploadable(images)


def _check_uploadable(images: list[Image]) -> None:
    if any(not image.data for image in images):
        raise bad_request(
            "This Lingma takes images only as uploaded bytes, and the proxy never fetches an image URL; "
            "send the image inline as base64 (a data: URI).",
            param="messages",
            code=IMAGE_NOT_SUPPORTED,
        )
    if len(images) > MAX_CLASSIC_IMAGES:
        raise bad_request(
            f"{len(images)} images in one turn; this Lingma takes at most {MAX_CLASSIC_IMAGES}.",
            param="messages",
            code="too_many_images",
        )
    for number, image in enumerate(images, 1):
        size = len(image.data) * 3 // 4
        if size > MAX_IMAGE_BYTES:
            raise bad_request(
                f"Image {number} is {size / 1048576:.1f} MB; Lingma takes images of at most 10 MB.",
                param="messages",
                code="image_too_large",
            )
