"""Whatever the body, a decoder either returns or raises ApiError: never anything else."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

from lingma_proxy.errors import ApiError
from lingma_proxy.response_store import ResponseStore
from lingma_proxy.wire.anthropic import decode_messages_request
from lingma_proxy.wire.openai_chat import decode_chat_request
from lingma_proxy.wire.responses import decode_responses_request

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
ODD_VALUES = [None, 0, -1, 1.5, True, False, "", "x", [], {}, [[]], [None], [1, "a"], {"type": 1}, {"type": "text"}, 10**30]
DECODERS = {
    "claude-code-turn2": decode_messages_request,
    "codex-turn2": lambda body: decode_responses_request(body, ResponseStore().get),
    "qwen-code-turn2": decode_chat_request,
}
MUTANTS_PER_FIXTURE = 400


def _paths(value, prefix=()):
    """Every (container, key) location in a JSON value."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield prefix + (key,)
        yield from _paths(child, prefix + (key,))


def _mutate(body: dict, rng: random.Random) -> dict:
    mutant = copy.deepcopy(body)
    for path in rng.sample(list(_paths(mutant)), k=rng.randint(1, 3)):
        parent = mutant
        try:
            for key in path[:-1]:
                parent = parent[key]
            if isinstance(parent, dict) and rng.random() < 0.2:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced an ancestor
    return mutant


def _small(body: dict) -> dict:
    """The fixture with long strings cut, so that mutations land on structure rather than text."""
    text = json.dumps(body)
    return json.loads(text.replace("The quick brown fox jumps over the lazy dog while the proxy keeps every byte of the shape. ", ""))


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_mutated_agent_bodies_only_ever_raise_api_error(name):
    decode = DECODERS[name]
    body = _small(json.loads((FIXTURES / f"{name}.json").read_text()))
    rng = random.Random(name)
    outcomes = {"ok": 0, "rejected": 0}
    for _ in range(MUTANTS_PER_FIXTURE):
        try:
            decode(_mutate(body, rng))
            outcomes["ok"] += 1
        except ApiError as err:
            assert err.status == 400 and err.message
            outcomes["rejected"] += 1
    assert outcomes["ok"] and outcomes["rejected"]  # the mutations exercised both paths


@pytest.mark.parametrize("decode", list(DECODERS.values()))
@pytest.mark.parametrize("body", [None, 1, "x", [], [{}], {}, {"model": {}}, {"model": "m", "messages": {}}, {"model": "m", "input": {}}])
def test_odd_top_level_bodies_are_rejected_cleanly(decode, body):
    with pytest.raises(ApiError):
        decode(body)
