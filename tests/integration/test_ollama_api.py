"""The Ollama API (/api/*) end to end: the official `ollama` client and raw HTTP against the real server
and the simulator."""

from __future__ import annotations

import httpx
import ollama
import pytest
import ujson

from harness.proxy import Proxy
from lingma_proxy.simulator.models import query_models_result

from .conftest import scenario_proxy
from .tool_calls_support import ONE_INSTANCE, ROUNDTRIP_ANSWER, ROUNDTRIP_CALL, ROUNDTRIP_RESULT, SimWatch, openai_tools

pytestmark = pytest.mark.timeout(60)

SEVERAL_CHUNKS_REPLY = "One two three four five six seven eight nine ten eleven twelve."
THINK = "REASONING-CHAT: first the question, then the answer."
THINK_REPLY = "Visible answer after chat thinking."
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
VISION_MODEL = "q35model"  # listed with isVl by the simulator
FINAL_FIELDS = ("total_duration", "load_duration", "prompt_eval_count", "eval_count", "eval_duration")
STREAM_MODES = pytest.mark.parametrize("stream", [True, False], ids=["stream", "non_stream"])


ollama_proxy = scenario_proxy("api_ollama", ONE_INSTANCE)


@pytest.fixture(scope="module")
def client(ollama_proxy: Proxy) -> ollama.Client:
    return ollama.Client(host=ollama_proxy.url, timeout=30)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def chat(client: ollama.Client, stream: bool, **request) -> tuple[ollama.ChatResponse, list[ollama.ChatResponse]]:
    """The answer as one ChatResponse (the stream's pieces joined), and the pieces (none without streaming)."""
    if not stream:
        return client.chat(stream=False, **request), []
    parts = list(client.chat(stream=True, **request))
    final = parts[-1]
    final.message.content = "".join(part.message.content or "" for part in parts)
    final.message.thinking = "".join(part.message.thinking or "" for part in parts) or None
    final.message.tool_calls = [call for part in parts for call in part.message.tool_calls or []] or None
    return final, parts


def post_lines(proxy: Proxy, path: str, body: dict | bytes) -> tuple[httpx.Response, list[dict]]:
    content = body if isinstance(body, bytes) else ujson.dumps(body).encode()
    response = httpx.post(f"{proxy.url}{path}", content=content, timeout=30)
    return response, [ujson.loads(line) for line in response.text.splitlines()]


# ---- discovery -----------------------------------------------------------------------------------


def test_list_shows_every_account_model_with_the_fields_ollama_clients_read(client):
    keys = list(dict.fromkeys(m["key"] for models in query_models_result(True).values() for m in models))
    listed = client.list().models
    assert [model.model for model in listed] == [f"{key}:latest" for key in keys]
    for model in listed:
        assert model.size == 0 and model.details.family == "lingma"
        assert model.modified_at is not None and len(model.digest) == 64
    assert len({model.digest for model in listed}) == len(listed)


def test_tags_carry_name_and_model_as_raw_json(ollama_proxy):
    models = httpx.get(f"{ollama_proxy.url}/api/tags", timeout=10).json()["models"]
    assert all(model["name"] == model["model"] and model["name"].endswith(":latest") for model in models)
    assert {"name", "model", "modified_at", "size", "digest", "details"} <= set(models[0])


@pytest.mark.parametrize(
    ("name", "capabilities"),
    [
        ("q35model:latest", ["completion", "tools", "vision"]),
        ("dashscope_qwen_plus_20250428_thinking", ["completion", "tools", "thinking"]),
        ("qwen3-coder:latest", ["completion", "tools"]),  # a display name, any case, tag ignored
    ],
)
def test_show_gives_details_context_length_and_capabilities(client, name, capabilities):
    shown = client.show(name)
    assert shown.capabilities == capabilities
    assert shown.details.family == "lingma"
    architecture = shown.modelinfo["general.architecture"]
    assert shown.modelinfo[f"{architecture}.context_length"] >= 131_072


def test_ps_lists_the_models_as_loaded_with_their_context_length(client):
    running = client.ps().models
    assert running and all(model.context_length and model.expires_at for model in running)


def test_version_is_a_semver_newer_clients_accept(ollama_proxy):
    version = httpx.get(f"{ollama_proxy.url}/api/version", timeout=10).json()["version"]
    assert tuple(int(part) for part in version.split(".")) >= (0, 6, 4)


def test_claude_codes_api_hello_still_answers(ollama_proxy):
    assert httpx.get(f"{ollama_proxy.url}/api/hello", timeout=10).json() == {"ok": True}


# ---- chat and generate ---------------------------------------------------------------------------


@STREAM_MODES
def test_chat_answers_with_the_reply_and_the_final_counts(client, stream):
    response, parts = chat(client, stream, model="auto", messages=ask("several chunks please"))
    assert response.message.role == "assistant"
    assert response.message.content == SEVERAL_CHUNKS_REPLY
    assert response.done is True and response.done_reason == "stop"
    assert response.prompt_eval_count > 0 and response.eval_count > 0
    assert response.total_duration >= response.eval_duration >= 0
    if stream:
        assert len(parts) >= 3 and not any(part.done for part in parts[:-1])


@STREAM_MODES
def test_think_shows_the_reasoning_apart_from_the_answer(client, stream):
    response, _ = chat(client, stream, model="auto", messages=ask("think in chat style"), think=True)
    assert response.message.thinking.strip() == THINK
    assert response.message.content.strip() == THINK_REPLY
    hidden, _ = chat(client, stream, model="auto", messages=ask("think in chat style"))
    assert not hidden.message.thinking and "REASONING" not in hidden.message.content


def test_num_predict_cuts_the_answer_with_done_reason_length(client):
    response = client.chat(model="auto", messages=ask("long reply please"), options={"num_predict": 3}, stream=False)
    assert response.done_reason == "length"
    assert "last sentence" not in response.message.content


def test_stop_option_cuts_before_the_marker(client):
    response = client.chat(model="auto", messages=ask("stop at the marker"), options={"stop": ["XYZ"]}, stream=False)
    assert response.message.content == "Before the marker "
    assert response.done_reason == "stop"


@STREAM_MODES
def test_tool_call_then_its_result_round_trips_in_the_same_session(client, ollama_proxy, stream):
    tools = openai_tools()
    watch = SimWatch(ollama_proxy)
    messages = ask("TC-ROUNDTRIP: what is the weather in Lisbon?")
    first, _ = chat(client, stream, model="auto", messages=messages, tools=tools)
    [call] = first.message.tool_calls
    assert call.function.name == "get_weather"
    assert call.function.arguments == ROUNDTRIP_CALL  # an object, as Ollama sends it
    assert "```" not in (first.message.content or "")

    messages += [first.message, {"role": "tool", "content": ROUNDTRIP_RESULT, "tool_name": "get_weather"}]
    second, _ = chat(client, stream, model="auto", messages=messages, tools=tools)
    assert second.message.content == ROUNDTRIP_ANSWER
    assert not second.message.tool_calls
    first_ask, second_ask = watch.asks()
    assert second_ask["sessionId"] == first_ask["sessionId"]  # session reuse: only the result went up
    [_, question] = watch.questions()
    assert ROUNDTRIP_RESULT in question and "[Tool result: get_weather #1]" in question


@STREAM_MODES
def test_generate_answers_a_prompt_with_a_system_prompt(client, ollama_proxy, stream):
    watch = SimWatch(ollama_proxy)
    if stream:
        parts = list(client.generate(model="auto", prompt="several chunks please", system="Be brief.", stream=True))
        text = "".join(part.response for part in parts)
        final = parts[-1]
    else:
        final = client.generate(model="auto", prompt="several chunks please", system="Be brief.", stream=False)
        text = final.response
    assert text == SEVERAL_CHUNKS_REPLY
    assert final.done and final.done_reason == "stop" and final.eval_count > 0
    [question] = watch.questions()
    assert "Be brief." in question


def test_generate_raw_sends_the_prompt_verbatim(client, ollama_proxy):
    watch = SimWatch(ollama_proxy)
    client.generate(model="auto", prompt="[INST] several chunks please [/INST]", system="ignored", raw=True)
    assert watch.questions() == ["[INST] several chunks please [/INST]"]


def test_format_json_asks_the_model_for_json(client, ollama_proxy):
    watch = SimWatch(ollama_proxy)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    client.chat(model="auto", messages=ask("several chunks please"), format=schema, stream=False)
    [question] = watch.questions()
    assert "JSON schema" in question and '"answer"' in question


# ---- images --------------------------------------------------------------------------------------


def test_an_image_reaches_a_vision_model_through_the_agent_dialect(make_proxy):
    proxy = make_proxy(dialect="acp")
    client = ollama.Client(host=proxy.url, timeout=30)
    message = {"role": "user", "content": "What is in this picture?", "images": [PNG]}
    response = client.chat(model=f"{VISION_MODEL}:latest", messages=[message], stream=False)
    assert response.message.content
    client.generate(model=VISION_MODEL, prompt="And this one?", images=[PNG], stream=False)
    images = proxy.sim_status()["images"]
    assert [(image["mimeType"], image["data_chars"]) for image in images] == [("image/png", len(PNG))] * 2


def test_an_image_the_upstream_cannot_take_is_a_clear_400(client):
    message = {"role": "user", "content": "What is in this picture?", "images": [PNG]}
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="auto", messages=[message])
    assert caught.value.status_code == 400
    assert "does not take images" in caught.value.error  # "auto" is no vision (isVl) model


def test_an_image_that_is_not_base64_is_a_400_naming_it(ollama_proxy):
    # Raw HTTP: the ollama client refuses to send it.
    message = {"role": "user", "content": "look", "images": ["not base64!"]}
    response, [error] = post_lines(ollama_proxy, "/api/chat", {"model": "auto", "messages": [message]})
    assert response.status_code == 400
    assert "messages[0].images[0]" in error["error"]


# ---- errors through the client -------------------------------------------------------------------


def test_an_unknown_model_is_a_404(client):
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="no-such-model:7b", messages=ask("hello"))
    assert caught.value.status_code == 404 and "no-such-model:7b" in caught.value.error
    with pytest.raises(ollama.ResponseError) as shown:
        client.show("no-such-model")
    assert shown.value.status_code == 404


def test_suffix_is_refused_clearly(client):
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model="auto", prompt="def add(a, b):", suffix="    return total")
    assert caught.value.status_code == 400 and "suffix" in caught.value.error


def test_embeddings_are_a_501_saying_why(client):
    for call in (lambda: client.embed(model="auto", input="text"), lambda: client.embeddings(model="auto", prompt="x")):
        with pytest.raises(ollama.ResponseError) as caught:
            call()
        assert caught.value.status_code == 501 and "no embedding model" in caught.value.error


def test_model_management_is_refused_because_the_account_manages_models(client):
    for call in (
        lambda: client.pull("auto", stream=False),
        lambda: client.delete("auto"),
        lambda: client.copy("auto", "mine"),
        lambda: client.create("mine", from_="auto"),
    ):
        with pytest.raises(ollama.ResponseError) as caught:
            call()
        assert caught.value.status_code == 501 and "managed by the Lingma account" in caught.value.error


def test_a_failure_mid_stream_is_raised_by_the_client(client):
    parts = []
    with pytest.raises(ollama.ResponseError) as caught:
        for part in client.chat(model="auto", messages=ask("FAULT-QUOTA-LATE"), stream=True):
            parts.append(part)
    assert parts and caught.value.error


# ---- raw HTTP --------------------------------------------------------------------------------------


def test_the_stream_is_ndjson_one_object_per_flushed_line(ollama_proxy):
    body = {"model": "auto", "messages": ask("paced chunks please")}  # stream defaults to true
    pieces: list[bytes] = []
    with httpx.stream("POST", f"{ollama_proxy.url}/api/chat", json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        for piece in response.iter_raw():
            pieces.append(piece)
    # Every flush is whole lines, and the paced chunks arrive as they come: the client never has to wait for
    # the body to end. Only lines made in the same instant (the last chunk and the final object) share a flush.
    assert all(piece.endswith(b"\n") for piece in pieces)
    lines = [ujson.loads(line) for piece in pieces for line in piece.splitlines()]
    assert len(lines) >= 5 and len(pieces) >= len(lines) - 1
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert "".join(line["message"]["content"] for line in lines) == "One two three four five six seven eight."


def test_the_final_object_has_the_reason_counts_and_nanosecond_durations(ollama_proxy):
    response, lines = post_lines(ollama_proxy, "/api/chat", {"model": "auto:latest", "messages": ask("hello")})
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["model"] == "auto:latest"  # the name the client asked for, as Ollama echoes it
    assert all(isinstance(final[name], int) and final[name] >= 0 for name in FINAL_FIELDS)
    assert final["total_duration"] >= final["eval_duration"]
    assert final["created_at"].endswith("Z")


def test_a_failure_after_the_first_line_is_a_last_line_carrying_error(ollama_proxy):
    response, lines = post_lines(ollama_proxy, "/api/chat", {"model": "auto", "messages": ask("FAULT-QUOTA-LATE")})
    assert response.status_code == 200
    *pieces, last = lines
    assert pieces and all(piece["done"] is False for piece in pieces)
    assert list(last) == ["error"] and last["error"]


def test_stream_false_is_one_object(ollama_proxy):
    response, lines = post_lines(
        ollama_proxy, "/api/generate", {"model": "auto", "prompt": "several chunks please", "stream": False}
    )
    assert response.headers["content-type"].startswith("application/json")
    [answer] = lines
    assert answer["response"] == SEVERAL_CHUNKS_REPLY and answer["done"] is True


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b"", 400, "empty"),
        (ujson.dumps({"model": "no-such-model", "messages": ask("hi")}).encode(), 404, "no-such-model"),
        (ujson.dumps({"model": "auto", "messages": "hi"}).encode(), 400, "messages"),
        (ujson.dumps({"messages": ask("hi")}).encode(), 400, "model"),
        (ujson.dumps({"model": "auto", "messages": [{"role": "robot", "content": "hi"}]}).encode(), 400, "robot"),
        (ujson.dumps({"model": "auto", "messages": ask("hi"), "think": "maximal"}).encode(), 400, "think"),
        (ujson.dumps({"model": "auto", "messages": ask("hi"), "format": "yaml"}).encode(), 400, "format"),
        (ujson.dumps({"model": "auto", "messages": ask("hi"), "options": {"num_ctx": "big"}}).encode(), 400, "num_ctx"),
    ],
    ids=["bad_json", "not_object", "empty", "unknown_model", "messages_type", "no_model", "role", "think", "format",
         "num_ctx"],
)
def test_bad_requests_get_ollamas_error_shape(ollama_proxy, body, status, fragment):
    response = httpx.post(f"{ollama_proxy.url}/api/chat", content=body, timeout=10)
    assert response.status_code == status
    error = response.json()
    assert list(error) == ["error"] and isinstance(error["error"], str)
    assert fragment in error["error"]


def test_keep_alive_and_num_ctx_are_accepted(ollama_proxy):
    body = {"model": "auto", "messages": ask("hello"), "keep_alive": "5m", "options": {"num_ctx": 2048}, "stream": False}
    response, [answer] = post_lines(ollama_proxy, "/api/chat", body)
    assert response.status_code == 200 and answer["done"] is True


def test_a_wrong_method_is_a_405_in_ollamas_shape(ollama_proxy):
    response = httpx.get(f"{ollama_proxy.url}/api/chat", timeout=10)
    assert response.status_code == 405 and "error" in response.json()


# ---- auth --------------------------------------------------------------------------------------------


def test_with_api_keys_the_ollama_routes_want_a_key_by_default(make_proxy):
    proxy = make_proxy({"auth": {"api_keys": ["secret-key"]}})
    with pytest.raises(ollama.ResponseError) as caught:
        ollama.Client(host=proxy.url, timeout=30).list()
    assert caught.value.status_code == 401
    keyed = ollama.Client(host=proxy.url, timeout=30, headers={"Authorization": "Bearer secret-key"})
    assert keyed.list().models
    assert httpx.get(f"{proxy.url}/api/version", timeout=10).status_code == 200  # the probe stays public


def test_auth_ollama_open_lets_keyless_clients_in_while_v1_keeps_its_key(make_proxy):
    proxy = make_proxy({"auth": {"api_keys": ["secret-key"], "ollama": "open"}})
    client = ollama.Client(host=proxy.url, timeout=30)
    assert client.chat(model="auto", messages=ask("hello"), stream=False).message.content
    assert httpx.get(f"{proxy.url}/v1/models", timeout=10).status_code == 401
