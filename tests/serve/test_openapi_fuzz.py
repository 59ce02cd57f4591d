"""Property tests: requests generated from /openapi.json (schemathesis) and raw junk (hypothesis) get no 5xx."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from bot.answer.answerer import Answerer
from bot.serve.app import create_app
from bot.config import Settings

TOKEN = "fuzz-token"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


@pytest.fixture
def app(fake_settings: Settings, fake_answerer: Answerer):
    """The app over the fixture index, admin and API keys enabled, no background polling."""
    return create_app(fake_settings.replace(admin_token=TOKEN, api_keys=(TOKEN,)), fake_answerer, poll_seconds=0)


OPERATIONS = [("POST", "/ask"), ("GET", "/search"), ("GET", "/sources/{chunk_id}"), ("GET", "/interviews"),
              ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("POST", "/admin/reindex"),
              ("GET", "/admin/status"), ("GET", "/v1/models"), ("GET", "/v1/models/{model}"),
              ("POST", "/v1/chat/completions")]


def test_fuzzed_operations_are_all_the_operations(app) -> None:
    spec = TestClient(app).get("/openapi.json").json()
    documented = {(m.upper(), path) for path, item in spec["paths"].items() for m in item}
    assert documented == set(OPERATIONS)


WITH_PARAMETERS = {"/ask", "/search", "/sources/{chunk_id}", "/admin/reindex", "/v1/models/{model}",
                   "/v1/chat/completions"}
KEYED = ("/admin/", "/v1/")  # paths behind a bearer token: fuzzed without it and with it
FUZZ_CASES = [(m, p, mode, token) for m, p in OPERATIONS
              for mode in ([GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if p in WITH_PARAMETERS
                           else [GenerationMode.POSITIVE])
              for token in ([None, TOKEN] if p.startswith(KEYED) else [None])]


# schemathesis' pytest loader (from_fixture) does not work with pytest 9, so strategies are driven directly.
@pytest.mark.parametrize("method,path,mode,token", FUZZ_CASES,
                         ids=[f"{m}{p}-{mode.value}-{'token' if t else 'anon'}" for m, p, mode, t in FUZZ_CASES])
def test_generated_requests_never_5xx(app, method: str, path: str, mode: GenerationMode, token: str | None) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]
    headers = {"Authorization": f"Bearer {token}"} if token else None

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ
    def run(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@given(body=st.binary(max_size=2048), content_type=st.sampled_from(["application/json", "text/plain", "", None]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_raw_bodies_to_ask_never_5xx(app, body: bytes, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type is not None else {}
    r = TestClient(app).post("/ask", content=body, headers=headers)
    assert 400 <= r.status_code < 500 or r.status_code == 200, r.text
    assert isinstance(r.json()["detail" if r.status_code != 200 else "answer"], str)


@given(value=st.one_of(st.text(max_size=300), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                       st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.integers())),
       field=st.sampled_from(["question", "top_k", "project", "adopter"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_json_value_in_any_field_never_5xx(app, value: object, field: str) -> None:
    body = {"question": "what drew you to the project?", field: value}
    raw = json.dumps(body).encode("utf-8", "surrogatepass")  # NaN and Infinity too, as some clients send them
    r = TestClient(app).post("/ask", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (200, 400, 422), r.text


@given(chunk_id=st.text(min_size=1, max_size=120), q=st.text(max_size=120))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_path_or_query_text_never_5xx(app, chunk_id: str, q: str) -> None:
    c = TestClient(app)
    assert c.get("/sources/" + quote(chunk_id, safe="")).status_code < 500
    assert c.get("/search", params={"q": q}).status_code < 500


@given(body=st.binary(max_size=2048), content_type=st.sampled_from(["application/json", "text/plain", "", None]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_raw_bodies_to_chat_completions_get_openai_errors(app, body: bytes, content_type: str | None) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["content-type"] = content_type
    r = TestClient(app).post("/v1/chat/completions", content=body, headers=headers)
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


@given(messages=st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "tool"]),
                                                "content": st.one_of(st.text(max_size=200), st.none())}),
                         min_size=1, max_size=5),
       model=st.sampled_from(["qabot", "qabot:knative", "qabot:widgetd", "qabot:nope", ""]), stream=st.booleans())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_conversation_is_answered_or_a_4xx(app, messages: list, model: str, stream: bool) -> None:
    r = TestClient(app).post("/v1/chat/completions", json={"model": model, "messages": messages, "stream": stream},
                             headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code in (200, 400, 404, 422), r.text
