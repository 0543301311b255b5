"""The internal model: every request is decoded into it once, whatever API it arrived on, and the
models an account offers. Everything below the handlers speaks it; nothing here knows a wire format."""

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


@dataclass(slots=True, frozen=True)
class Image:
    """An image part as the client sent it: inline base64 `data` with its media type, or a `url`.

    Only the agent dialect can forward images, and only in the newest turn (docs/features.md §6a); anywhere
    else an image becomes a placeholder in the prompt text.
    """

    media_type: str = ""
    data: str = ""  # base64, without any `data:` prefix
    url: str = ""  # a remote URL, when the client sent one instead of the bytes


def image_from_url(url: str) -> Image:
    """OpenAI and Responses carry an image as one URL string: a `data:` URL holds the bytes inline."""
    if url.startswith("data:") and ";base64," in url:
        header, data = url[len("data:"):].split(";base64,", 1)
        return Image(media_type=header, data=data)
    return Image(url=url)


@dataclass(slots=True)
class Message:
    """One turn. System/developer messages inside the history keep their place as role "system".

    A tool result is its own Message(role="tool") with `tool_call_id`.
    """

    role: Role
    text: str = ""
    tool_calls: list[ToolUse] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False
    images: list[Image] = field(default_factory=list)


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


def messages_size(messages: list[Message]) -> int:
    """Roughly the bytes messages hold: their text, call arguments and image data."""
    size = 0
    for message in messages:
        size += 64 + len(message.text) + sum(len(call.name) + len(call.arguments) for call in message.tool_calls)
        size += sum(len(image.data) + len(image.url) for image in message.images)
    return size


def conversation_size(conv: Conversation) -> int:
    """Roughly the bytes a conversation's prompt is made of: system, tools and messages."""
    tools = sum(len(tool.name) + len(tool.description) + len(str(tool.parameters)) for tool in conv.tools)
    return len(conv.system) + tools + messages_size(conv.messages)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str  # stable and usable as `model` in requests
    display_name: str
    context_window: int
    is_reasoning: bool = False
    is_vision: bool = False
