"""Images through the classic dialect (docs/protocol.md §11.4): each goes up as `image/upload` with a data URI,
its URL comes back later as `image/uploadResultNotification` with the same requestId, and the ask names
the URLs in `chatContext.imageUrls`. Only inline bytes go up: an image URL is never fetched.
"""

from __future__ import annotations

import asyncio
import uuid

from lingma_proxy.errors import ApiError
from lingma_proxy.model import Image
from lingma_proxy.upstream.failures import api_error_from_rpc, crashed
from lingma_proxy.upstream.rpc import CONNECTION_LOST, ConnectionLost, RpcConnection, RpcError, RpcTimeout

UPLOAD_RESULT = "image/uploadResultNotification"
URL_WAIT_SEC = 30.0  # the URL follows the upload's reply; an upload that never reports one fails the turn


async def upload_images(rpc: RpcConnection, images: tuple[Image, ...], timeout: float) -> list[str]:
    """The URLs Lingma gave the images, in order; an ApiError when any upload fails."""
    return [await _upload(rpc, image, timeout) for image in images]


async def _upload(rpc: RpcConnection, image: Image, timeout: float) -> str:
    request_id = str(uuid.uuid4())
    arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_message(method: str, params: dict) -> None:
        if arrived.done():
            return
        if method == CONNECTION_LOST:
            arrived.set_exception(crashed())
        elif method == UPLOAD_RESULT:
            result = params.get("result") if isinstance(params.get("result"), dict) else {}
            url = result.get("imageUrl")
            if url:
                arrived.set_result(str(url))
            else:
                arrived.set_exception(ApiError("upstream", f"Lingma's image upload gave no URL: {result!r}"))

    rpc.subscribe(request_id, on_message)
    params = {"imageUri": f"data:{image.media_type or 'image/png'};base64,{image.data}", "requestId": request_id}
    try:
        reply = await rpc.call("image/upload", params, timeout)
        result = reply.get("result") if isinstance(reply, dict) else None
        if isinstance(result, dict) and result.get("success") is False:
            raise ApiError("upstream", f"Lingma refused the image upload: {result.get('errorMessage') or result}")
        async with asyncio.timeout(URL_WAIT_SEC):
            return await arrived
    except TimeoutError:
        raise ApiError("timeout", f"Lingma gave no URL for an uploaded image within {URL_WAIT_SEC:g}s") from None
    except (RpcError, RpcTimeout, ConnectionLost) as exc:
        raise api_error_from_rpc(exc, "image/upload") from None
    finally:
        rpc.unsubscribe(request_id)
