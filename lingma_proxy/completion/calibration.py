"""How the runtime's own input figure compares with our count, per model (docs/protocol.md §11.5).

Our counts come from the Qwen tokenizer over the rendered prompt; the runtime's (`context/usage/sync`,
agent `context_usage`) also covers what Lingma adds to the prompt. The ratio of the two, summed over
turns, shows on /internal/stats how far ours may be off for each model.
"""

from __future__ import annotations


class TokenCalibration:
    def __init__(self) -> None:
        self._sums: dict[str, tuple[int, int, int]] = {}  # model -> (runtime's tokens, ours, turns)

    def observe(self, model: str, runtime_context: int | None, output_tokens: int, our_input: int) -> None:
        """One finished turn: the runtime's context figure less this answer is its input figure."""
        if runtime_context is None or runtime_context <= output_tokens or our_input <= 0:
            return
        runtime, ours, turns = self._sums.get(model, (0, 0, 0))
        self._sums[model] = (runtime + runtime_context - output_tokens, ours + our_input, turns + 1)

    def stats(self) -> dict[str, dict]:
        return {
            model: {"ratio": round(runtime / ours, 3), "runtime_tokens": runtime, "our_tokens": ours, "turns": turns}
            for model, (runtime, ours, turns) in sorted(self._sums.items())
        }
