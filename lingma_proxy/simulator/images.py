"""The classic dialect's image upload (docs/protocol.md §11.4): `image/upload` with a data URI answers at
once, and the image's URL follows as the notification `image/uploadResultNotification` with the same
requestId; the ask then names the URLs in `chatContext.imageUrls`, for a vision model only.
"""

from __future__ import annotations

import uuid
from typing import Any

from lingma_proxy.simulator.models import is_vision_model
from lingma_proxy.simulator.peer import Peer, RpcError
from lingma_proxy.simulator.stats import SimStats

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # the limit Clawith's stand-in applies (§11.4)


class ImageUploads:
    def __init__(self, stats: SimStats, family: str) -> None:
        self._stats = stats
        self._family = family
        self._urls: set[str] = set()  # what was uploaded: an ask may only name these

    async def upload(self, params: dict[str, Any], peer: Peer) -> Any:
        request_id = str(params.get("requestId") or "")
        uri = params.get("imageUri")
        if not request_id:
            raise RpcError(-32602, "requestId is empty")
        if not isinstance(uri, str) or not uri.startswith("data:") or ";base64," not in uri:
            raise RpcError(-32602, "imageUri must be a data: URI with base64 data (local paths are refused)")
        mime, data = uri[len("data:") :].split(";base64,", 1)
        if len(data) * 3 // 4 > MAX_IMAGE_BYTES:
            raise RpcError(-32602, "image larger than 10 MB")
        url = f"https://sim-images.invalid/{uuid.uuid4().hex}.{mime.rpartition('/')[2] or 'png'}"
        self._urls.add(url)
        self._stats.record_image(request_id, mime, data, url)
        notice = {"result": {"requestId": request_id, "imageUrl": url}}
        # Sent from a task of its own, which first runs once this reply is on its way.
        peer.send_notification("image/uploadResultNotification", notice)
        return {"requestId": request_id, "result": {"success": True}}

    def check_ask(self, chat_context: Any, model: str) -> list[str]:
        """The image URLs an ask names; refused unless each was uploaded here and the model takes images."""
        urls = chat_context.get("imageUrls") if isinstance(chat_context, dict) else None
        if not urls:
            return []
        if not isinstance(urls, list) or any(url not in self._urls for url in urls):
            raise RpcError(-32602, "chatContext.imageUrls names an image that was not uploaded")
        if not is_vision_model(model, self._family):
            raise RpcError(-32603, f"model {model} does not support image input")
        return [str(url) for url in urls]
