"""llm-comply against the proxy in its three formats: OpenAI Chat, Open Responses and Anthropic.

Every llm-comply case is one pytest case, run through llm-comply's own runner, response schema
(the bundled vendor spec), SSE event and semantic validators exactly as its CLI runs them, each
over a fresh connection, so that one case's trouble cannot fail the next (test_keep_alive.py
covers the connection reuse that did just that). The cases for reasoning and thinking run too:
llm-comply only runs them for reasoning model names, so such names are sent, and the proxy maps
any unknown name to its default model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from llm_comply import http as comply_http
from llm_comply import result as comply_result
from llm_comply import runner as comply_runner
from llm_comply.config import ComplianceConfig
from llm_comply.schema import SpecLoader
from llm_comply.tests import get_tests

from harness.proxy import Proxy

from .conftest import API_KEY
from .vendor_specs import CHAT, MESSAGES, RESPONSES, Api, spec_path

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning"),
]


@dataclass(frozen=True)
class Format:
    api: Api
    model: str
    auth_header: str = "Authorization"
    bearer: bool = True
    headers: dict[str, str] = field(default_factory=dict)


FORMATS = {
    "openai-chat": Format(CHAT, "o4-mini"),
    "open-responses": Format(RESPONSES, "o4-mini"),
    "anthropic": Format(MESSAGES, "claude-sonnet-4-5", "x-api-key", False, {"anthropic-version": "2023-06-01"}),
}

IMAGES = (
    "Images are refused with a 400 (code image_not_supported) through the classic Lingma dialect, "
    "which cannot carry them (docs/features.md 6a); the agent dialect with a vision model forwards them."
)
EXPECTED_DEVIATIONS = {"chat-image-input": IMAGES, "image-input": IMAGES, "anth-image-input": IMAGES}

CASES = [pytest.param(name, case, id=f"{name}:{case.id}") for name in FORMATS for case in get_tests(name)]


@pytest.mark.parametrize(("format_name", "case"), CASES)
def test_llm_comply_case(proxy: Proxy, format_name: str, case) -> None:
    fmt = FORMATS[format_name]
    config = ComplianceConfig(
        base_url=f"{proxy.url}/v1",
        api_key=API_KEY,
        model=fmt.model,
        auth_header=fmt.auth_header,
        use_bearer_prefix=fmt.bearer,
        extra_headers=fmt.headers,
        timeout=30,
    )
    comply_http.close_client()
    result = comply_runner.TestRunner(config, [case], SpecLoader(str(spec_path(fmt.api)))).run_one(case)
    if result.status is comply_result.TestStatus.SKIPPED:
        pytest.skip("; ".join(result.errors))
    for warning in result.warnings:
        print(f"llm-comply warning: {warning}")
    if case.id in EXPECTED_DEVIATIONS:
        assert result.errors[:1] == ["HTTP 400 (expected [200])"], "\n".join(result.errors)
        pytest.xfail(EXPECTED_DEVIATIONS[case.id])
    assert result.status is comply_result.TestStatus.PASSED, "\n".join(result.errors)
