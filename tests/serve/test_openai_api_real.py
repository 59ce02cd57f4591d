"""The OpenAI-compatible API through the official `openai` client, against real uvicorn on loopback with the real
model and index of ../shared/corpus."""

from __future__ import annotations

import openai
import pytest

from bot.serve.app import create_app
from tests.live import LiveServer

pytestmark = pytest.mark.slow
KEY = "sk-qabot-real"


@pytest.fixture(scope="module")
def live(real_settings, real_answerer):
    """`qabot serve`'s app over the real index, with QABOT_API_KEYS set, on a loopback port."""
    with LiveServer(create_app(real_settings.replace(api_keys=(KEY,)), real_answerer, poll_seconds=0)) as server:
        yield server


@pytest.fixture
def client(live) -> openai.OpenAI:
    """The official client, pointed at qabot."""
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0, timeout=60) as c:
        yield c


def _qabot(completion) -> dict:
    return completion.model_extra["qabot"]


def test_models_list_qabot_and_each_project(client: openai.OpenAI, real_answerer) -> None:
    ids = [m.id for m in client.models.list()]
    projects = {e.project for e in real_answerer.index.manifest.files.values()}
    assert ids[0] == "qabot" and len(ids) == 1 + len(projects)
    assert {"qabot:knative", "qabot:kserve", "qabot:in-toto"} <= set(ids)
    assert client.models.retrieve("qabot:kserve").id == "qabot:kserve"


def test_completion_streamed_and_not_are_the_same_answer(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": "Why did Gojek choose Knative?"}]
    whole = client.chat.completions.create(model="qabot", messages=question)
    content = whole.choices[0].message.content
    extra = _qabot(whole)
    assert whole.choices[0].finish_reason == "stop" and extra["answered"] is True
    assert any(c["adopter"] == "Gojek" for c in extra["citations"])
    assert "\n\nSources:\n- [1] Knative · Gojek · " in content
    usage = whole.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    stream = client.chat.completions.create(model="qabot", messages=question, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    joined = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert joined == content
    assert chunks[-1].usage.completion_tokens == usage.completion_tokens
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"


def test_a_follow_up_is_resolved_from_the_earlier_user_messages(client: openai.OpenAI) -> None:
    first_q = "How long has Gojek used Knative?"
    first = client.chat.completions.create(model="qabot", messages=[{"role": "user", "content": first_q}])
    assert any(c["adopter"] == "Gojek" for c in _qabot(first)["citations"])
    follow = client.chat.completions.create(model="qabot", messages=[
        {"role": "system", "content": "Answer from the interviews."}, {"role": "user", "content": first_q},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "and IBM?"}])
    extra = _qabot(follow)
    assert "IBM" in extra["resolved_question"], extra["resolved_question"]
    assert extra["answered"] is True and extra["citations"]
    assert {c["adopter"] for c in extra["citations"]} == {"IBM"}, extra["citations"]


def test_a_project_model_answers_from_that_project_only(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": "Why do adopters value scale to zero?"}]
    everyone = _qabot(client.chat.completions.create(model="qabot", messages=question))
    kserve = _qabot(client.chat.completions.create(model="qabot:kserve", messages=question))
    assert len({c["project"] for c in everyone["citations"]}) > 1
    assert kserve["citations"] and {c["project"] for c in kserve["citations"]} == {"KServe"}


def test_errors_are_the_clients_exceptions(live, client: openai.OpenAI) -> None:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="wrong-key", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError) as denied:
            stranger.chat.completions.create(model="qabot", messages=[{"role": "user", "content": "why?"}])
        assert denied.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            stranger.models.list()
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="qabot", messages=[])
    assert bad.value.param == "messages"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "why?"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="qabot", messages=[{"role": "user", "content": "why?"},
                                                               {"role": "assistant", "content": "Because"}])
