"""The protocol probe (`python lingma_proxy.py probe`): fixed checks against a real Lingma, a pasteable report.

Its results settle what docs/protocol.md marks [unverified]: isReply memory, concurrency, the
finish fields, empty deltas, cloned work dirs.
"""

from lingma_proxy.probe.runner import run_probe

__all__ = ["run_probe"]
