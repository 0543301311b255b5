"""Redactor and redact_json: secrets and credential-shaped text never survive."""

from __future__ import annotations

import base64

import pytest
import ujson

from lingma_proxy.redact import Redactor, is_secret_key, redact_json

LINGMA_TOKEN = "pt-Zx81Kq0vB7nW3mYpLr5Ts2Ua9"
REFRESH_TOKEN = "rt-Qm3Vx9Lk2Jp7Hn5Gb1Fd8Sa4"


def test_known_secret_values_are_replaced_wherever_they_appear():
    redactor = Redactor(["sk-proxy-key", "hunter2"])
    out = redactor.redact("key sk-proxy-key used; pw=hunter2; again sk-proxy-key")
    assert "sk-proxy-key" not in out and "hunter2" not in out
    assert out.count("***") == 3


def test_a_secret_containing_another_is_masked_whole():
    out = Redactor(["abc", "abcdef-long"]).redact("value abcdef-long end")
    assert out == "value *** end"


def test_secrets_added_at_run_time_are_redacted_from_then_on():
    redactor = Redactor()
    assert redactor.redact("token-learned-later") == "token-learned-later"
    redactor.add("token-learned-later")
    redactor.add("")  # ignored, or it would match everywhere
    assert redactor.redact("got token-learned-later here") == "got *** here"


@pytest.mark.parametrize(
    "text, secret",
    [
        (f"auth/status -> {LINGMA_TOKEN} / {REFRESH_TOKEN}", LINGMA_TOKEN),
        (f"auth/status -> {LINGMA_TOKEN} / {REFRESH_TOKEN}", REFRESH_TOKEN),
        ('{"status": 2, "token": "opaque-1", "refreshToken": "opaque-2"}', "opaque-1"),
        ('{"status": 2, "token": "opaque-1", "refreshToken": "opaque-2"}', "opaque-2"),
        ('{"password": "p\\"w-with-quote"}', "w-with-quote"),
        ("login with password=letmein&user=bob", "letmein"),
        ("password: letmein", "letmein"),
        ("{'username': 'bob', 'password': 'letmein'}", "letmein"),
        ("Authorization: Bearer sk-abcdef.123", "sk-abcdef.123"),
        ("headers={'Authorization': 'Bearer sk-abcdef', 'Host': 'x'}", "sk-abcdef"),
        ("x-api-key: sk-ant-xyz", "sk-ant-xyz"),
        ("GET /auth/callback?state=n1&auth=VUlECkFJRA&token=cHQtWFhY", "VUlECkFJRA"),
        ("GET /auth/callback?state=n1&auth=VUlECkFJRA&token=cHQtWFhY", "cHQtWFhY"),
        ("bundle " + base64.b64encode(bytes(range(256)) * 2).decode() + " end", "AAECAwQFBgcI"),
    ],
)
def test_credential_shapes_are_redacted_without_being_told(text, secret):
    out = Redactor().redact(text)
    assert secret not in out
    assert "***" in out


def test_redacted_json_stays_valid_json():
    text = '{"token": "pt-secretsecretsecret1", "authorization": "Bearer abc", "n": 1}'
    parsed = ujson.loads(Redactor().redact(text))
    assert parsed == {"token": "***", "authorization": "***", "n": 1}


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=100 model=auto stream=true",
        '{"usage": {"prompt_tokens": 12, "completion_tokens": 3}}',
        "POST /v1/chat/completions 200 (127.0.0.1) 12.5ms",
        "state=ready instance=default-0 dialect=classic",
        "the word lingma and a path ~/.lingma/vscode",
    ],
)
def test_ordinary_log_lines_are_left_alone(text):
    assert Redactor(["k1-not-present"]).redact(text) == text


def test_redact_json_masks_secret_keys_at_any_depth_and_leaves_the_input_alone():
    body = {
        "headers": {"Authorization": "Bearer x", "x-api-key": "k", "content-type": "application/json"},
        "result": {"status": 2, "token": "pt-1", "refreshToken": "rt-1", "accountId": "42"},
        "accounts": [{"name": "a", "password": "pw", "session_bundle_b64": "H4sI", "api_key": ""}],
        "max_tokens": 5,
    }
    out = redact_json(body)
    assert out["headers"] == {"Authorization": "***", "x-api-key": "***", "content-type": "application/json"}
    assert out["result"] == {"status": 2, "token": "***", "refreshToken": "***", "accountId": "42"}
    assert out["accounts"] == [{"name": "a", "password": "***", "session_bundle_b64": "***", "api_key": ""}]
    assert out["max_tokens"] == 5
    assert body["result"]["token"] == "pt-1"  # a copy, not the original


@pytest.mark.parametrize("key", ["token", "refreshToken", "apiKey", "api_key", "x-api-key", "Authorization", "admin_token"])
def test_secret_key_names(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["max_tokens", "prompt_tokens", "name", "model", "session_bundle_file", "password_env"])
def test_ordinary_key_names(key):
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("HTTPS_PROXY=http://alice:s3cr3t-pw@proxy.corp:3128", "s3cr3t-pw"),
        ("cache/user: machine_id=9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ('{"machine_id": "9f8e7d6c5b4a"}', "9f8e7d6c5b4a"),
        ("https://devops.aliyun.com/lingma/login?nonce=0123abcd&port=1&state=0123abcd", "0123abcd"),
        ("login?port=1&challenge=PKCE-value-xyz&challenge_method=S256", "PKCE-value-xyz"),
    ],
)
def test_user_info_emails_machine_ids_and_login_url_values_are_masked(text, secret):
    assert secret not in Redactor().redact(text)


def test_a_token_learned_at_run_time_is_masked_wherever_it_appears():
    redactor = Redactor()
    redactor.add("opaque-live-value-1234")
    assert "opaque-live-value-1234" not in redactor.redact("child said: opaque-live-value-1234 ok")


@pytest.mark.parametrize("key", ["credentials", "private_key", "auth", "session", "cookie", "machineId"])
def test_debug_ring_masks_the_wider_family_of_secret_key_names(key):
    assert redact_json({key: "value-x"}) == {key: "***"}
