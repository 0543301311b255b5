"""schemathesis against the vendor specs: createChatCompletion, createResponse and messages_post.

Each operation gets the examples, coverage and fuzzing phases (stateful testing off), positive and
negative data, MAX_EXAMPLES fuzzed cases (the coverage phase derives its own fixed set from the
schema), a 30 s timeout per request, and three checks:
- not_a_server_error: no 5xx, whatever the input;
- response_schema_conformance: every answer the spec documents matches it (200 on all three,
  and the 4XX error body on messages_post; the OpenAI specs document no error responses);
- negative_data_rejection, narrowed by deviations.py to the parts of a request the proxy reads.

Only non-streaming requests are sent (a generated `stream: true` becomes false): schemathesis
validates an event stream against an event-envelope schema (OpenAPI 3.2 style), while these specs
describe each event's JSON payload, so every correct stream would fail. test_streams.py checks
the streamed events against the specs' event schemas instead.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from harness.proxy import Proxy

from .conftest import API_KEY
from .deviations import TOLERATED, is_tolerated
from .vendor_specs import CHAT, MESSAGES, RESPONSES, Api, adjusted_spec

pytestmark = [pytest.mark.conformance, pytest.mark.timeout(600)]

MAX_EXAMPLES = 30
API_BY_PATH = {"/chat/completions": CHAT, "/responses": RESPONSES, "/v1/messages": MESSAGES}


def auth_headers(api: Api) -> dict[str, str]:
    return {"x-api-key": API_KEY} if api is MESSAGES else {"Authorization": f"Bearer {API_KEY}"}


def load(api: Api) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(adjusted_spec(api))
    schema.config.update(headers=auth_headers(api), request_timeout=30)
    # No example database: the suite leaves nothing behind in the work tree.
    schema.config.generation.update(max_examples=MAX_EXAMPLES, modes=list(schemathesis.GenerationMode), database="none")
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    return schema.include(operation_id=api.operation_id)


@schemathesis.check
def negative_data_rejected_where_read(ctx, response, case) -> bool | None:
    """negative_data_rejection, except where deviations.py documents why the proxy accepts."""
    try:
        return negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData:
        api = API_BY_PATH[case.operation.path]
        if not is_tolerated(api, case.body):
            raise
        TOLERATED[api.name] += 1
        return None


CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejected_where_read]


def exercise(case: schemathesis.Case, proxy: Proxy, api: Api) -> None:
    if isinstance(case.body, dict) and case.body.get("stream") is True:
        case.body["stream"] = False
    case.call_and_validate(base_url=proxy.url + api.base_path, checks=CHECKS)


@load(CHAT).parametrize()
def test_create_chat_completion(case: schemathesis.Case, proxy: Proxy) -> None:
    exercise(case, proxy, CHAT)


@load(RESPONSES).parametrize()
def test_create_response(case: schemathesis.Case, proxy: Proxy) -> None:
    exercise(case, proxy, RESPONSES)


@load(MESSAGES).parametrize()
def test_messages_post(case: schemathesis.Case, proxy: Proxy) -> None:
    exercise(case, proxy, MESSAGES)
