"""WebSocket (RFC 6455) on asyncio, for the JSON-RPC carrier: the proxy connects, the simulator serves."""

from .client import ClientChannel, HandshakeRefused, connect

__all__ = ["ClientChannel", "HandshakeRefused", "connect"]
