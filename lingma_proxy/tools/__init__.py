"""Tool-call emulation: the contract rendered into the prompt, the parser that reads calls back out
of the answer, argument validation, and the repair of a missing forced call (docs/features.md §6)."""

from .accept import RejectedBlock
from .contract import render_tool_call, render_tool_contract
from .parser import ActionBlockParser
from .repair import fallback_text, needs_repair, repair_prompt

__all__ = [
    "ActionBlockParser",
    "RejectedBlock",
    "fallback_text",
    "needs_repair",
    "render_tool_call",
    "render_tool_contract",
    "repair_prompt",
]
