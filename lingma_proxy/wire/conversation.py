"""The internal model every request is decoded into once, whatever API it arrived on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant", "tool"]
ToolChoiceMode = Literal["auto", "none", "required", "named"]


@dataclass(slots=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters: dict = field(default_factory=dict)  # JSON schema of the arguments object


@dataclass(slots=True)
class ToolChoice:
    mode: ToolChoiceMode = "auto"
    name: str | None = None  # set when mode == "named"


@dataclass(slots=True)
class ToolUse:
    """A tool call the assistant made earlier in the history."""

    id: str
    name: str
    arguments: str  # JSON object text, as the client sent it back


@dataclass(slots=True)
class Message:
    """One turn. System/developer messages inside the history keep their place as role "system".

    A tool result is its own Message(role="tool") with `tool_call_id`; images are counted, not carried,
    because the classic dialect cannot take them (product.md §6a).
    """

    role: Role
    text: str = ""
    tool_calls: list[ToolUse] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False
    images: int = 0


@dataclass(slots=True)
class Conversation:
    model: str
    messages: list[Message]
    system: str = ""  # top-level system prompt: Anthropic `system`, Responses `instructions`
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    parallel_tool_calls: bool = True
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    temperature: float | None = None
    stream: bool = False
    thinking: bool = False  # the client asked to see reasoning (Anthropic `thinking` enabled/adaptive)
    affinity_key: str | None = None  # OpenAI `user`, Anthropic metadata.user_id, Responses prompt_cache_key

    def newest_user_index(self) -> int:
        """Index of the last user message, or -1; session reuse splits the history here."""
        for index in range(len(self.messages) - 1, -1, -1):
            if self.messages[index].role == "user":
                return index
        return -1
