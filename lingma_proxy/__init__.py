"""lingma-proxy: OpenAI- and Anthropic-compatible APIs in front of a local Lingma binary."""

__version__ = "0.5.0"
