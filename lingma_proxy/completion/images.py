"""Whether the newest turn's images can go upstream (docs/features.md §6a, docs/protocol.md §8, §9).

Only the agent dialect takes images, as `prompt` parts, and only for a model the account lists
with `isVl`. Anything else is a clear 400 before an upstream slot is taken.
"""

from __future__ import annotations

from collections.abc import Collection

from ..errors import bad_request
from ..model import Image, ModelInfo
from ..upstream.dialects import IMAGE_NOT_SUPPORTED, images_need_agent_dialect


def check_images_forwardable(
    images: list[Image], model: ModelInfo, dialect_setting: str, settled_dialects: Collection[str]
) -> None:
    """Raise a 400 unless every image can be forwarded: the pool may speak the agent dialect (an
    instance not settled yet gives it the benefit of the doubt; the dialect itself checks again),
    the model takes images, and each image arrived as bytes or a URL."""
    if dialect_setting == "classic" or (settled_dialects and "acp" not in settled_dialects):
        raise images_need_agent_dialect()
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
