"""Settings come from QABOT_* (and SLACK_*) variables through pydantic-settings; bad values name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULT_MODEL, ConfigError, Settings, embedder_class, is_plugin_spec
from tests.fakes import FAKE_MODEL, FakeEmbedder


def test_variables_map_to_fields_with_their_documented_names() -> None:
    s = Settings.from_env({"QABOT_CORPUS_DIR": "/data/interviews", "QABOT_MODEL": FAKE_MODEL, "SLACK_BOT_TOKEN": "x-1",
                           "QABOT_CORS_ORIGINS": "https://a.example, https://b.example,", "QABOT_WORKERS": "3",
                           "QABOT_PUBLIC_URL": "https://qabot.example/", "QABOT_QUERY_ENCODER": " ONNX ",
                           "QABOT_LOG_LEVEL": "debug", "QABOT_LOG_QUESTIONS": "yes"})
    assert s.corpus_dir == Path("/data/interviews") and s.model_name == FAKE_MODEL and s.slack_bot_token == "x-1"
    assert s.cors_origins == ("https://a.example", "https://b.example") and s.workers == 3
    assert s.public_url == "https://qabot.example" and s.query_encoder == "onnx"
    assert s.log_level == "DEBUG" and s.log_questions is True


def test_empty_or_missing_variables_give_the_defaults() -> None:
    s = Settings.from_env({"QABOT_TOP_K": "", "QABOT_ADMIN_TOKEN": ""})
    assert s == Settings.from_env({}) and s.top_k == 5 and s.admin_token is None and s.workers == 1


def test_from_env_reads_only_the_mapping_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QABOT_TOP_K", "9")
    assert Settings.from_env({}).top_k == 5
    assert Settings.from_env().top_k == 9


@pytest.mark.parametrize("env, variable", [
    ({"QABOT_TOP_K": "five"}, "QABOT_TOP_K"),
    ({"QABOT_WORKERS": "0"}, "QABOT_WORKERS"),
    ({"QABOT_MAX_FILE_BYTES": "-1"}, "QABOT_MAX_FILE_BYTES"),
    ({"QABOT_HEADER_TIMEOUT_S": "inf"}, "QABOT_HEADER_TIMEOUT_S"),
    ({"QABOT_HEADER_TIMEOUT_S": "0"}, "QABOT_HEADER_TIMEOUT_S"),
    ({"QABOT_QUERY_ENCODER": "gpu"}, "QABOT_QUERY_ENCODER"),
    ({"QABOT_LOG_QUESTIONS": "maybe"}, "QABOT_LOG_QUESTIONS"),
])
def test_a_bad_value_is_a_config_error_naming_the_variable_and_value(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    assert message.startswith(variable + ":") and repr(env[variable]) in message


def test_replace_keeps_the_rest_and_ignores_none() -> None:
    s = Settings(model_name=FAKE_MODEL, port=9000)
    t = s.replace(port=9001, host=None)
    assert (t.port, t.host, t.model_name, s.port) == (9001, s.host, FAKE_MODEL, 9000)
    with pytest.raises(Exception):
        s.port = 1  # frozen: settings are read once and shared


def test_the_model_is_the_bundled_name_by_default_or_a_plugin_class() -> None:
    assert Settings.from_env({}).model_name == DEFAULT_MODEL
    assert Settings.from_env({"QABOT_MODEL": "paraphrase-MiniLM-L3-v2"}).model_name == "paraphrase-MiniLM-L3-v2"
    assert not is_plugin_spec(DEFAULT_MODEL) and is_plugin_spec(FAKE_MODEL)
    assert embedder_class(FAKE_MODEL) is FakeEmbedder
    assert Settings.from_env({"QABOT_MODEL": f" {FAKE_MODEL} "}).model_name == FAKE_MODEL


class _NoQueries:
    name = "half"
    dim = 3

    def embed_documents(self, texts: list[str], progress: bool = False) -> None:
        """Not an embedder: it cannot embed a question."""


@pytest.mark.parametrize("spec, says", [
    ("no_such_module_qabot:Embedder", "cannot import 'no_such_module_qabot'"),
    ("tests.fakes:NoSuchEmbedder", "has no 'NoSuchEmbedder'"),
    ("tests.fakes:FAKE_MODEL", "is not a class"),
    ("tests.test_config:_NoQueries", "lacks embed_query"),
    ("tests.fakes:", "not a bundled model name or a plugin spec"),
    ("fake", "use tests.fakes:FakeEmbedder"),
])
def test_a_bad_model_plugin_is_a_config_error_naming_qabot_model(spec: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"QABOT_MODEL": spec})
    message = str(raised.value)
    assert message.startswith("QABOT_MODEL: ") and says in message and repr(spec) in message
    assert "Value error" not in message
