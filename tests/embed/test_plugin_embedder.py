"""QABOT_MODEL=module:Class makes the embedder a plugin: constructed with no arguments, checked against the protocol."""

from __future__ import annotations

import typing

import pytest

from bot.config import EMBEDDER_MEMBERS, ConfigError, Settings
from bot.embed.embedders import Embedder, SentenceTransformerEmbedder, make_embedder, settings_embedder
from tests.fakes import FAKE_MODEL, FakeEmbedder


def test_the_plugin_members_are_the_embedder_protocol() -> None:
    protocol = set(typing.get_type_hints(Embedder)) | {
        name for name, value in vars(Embedder).items() if callable(value) and not name.startswith("_")}
    assert set(EMBEDDER_MEMBERS) == protocol


def test_a_plugin_spec_makes_an_instance_of_that_class() -> None:
    embedder = settings_embedder(Settings(model_name=FAKE_MODEL))
    assert type(embedder) is FakeEmbedder and (embedder.name, embedder.dim) == ("fake", 64)
    assert embedder.embed_query("autoscaling").shape == (64,)
    assert isinstance(make_embedder("all-MiniLM-L6-v2", query_encoder="torch"), SentenceTransformerEmbedder)


class Unnamed:
    name: str
    dim: int

    def __init__(self) -> None:
        self.dim = 3  # forgets the name

    def embed_documents(self, texts: list[str], progress: bool = False) -> None:
        """Unused."""

    def embed_query(self, text: str) -> None:
        """Unused."""


class NeedsArguments(Unnamed):
    def __init__(self, path: str) -> None:
        super().__init__()


@pytest.mark.parametrize("cls, says", [("Unnamed", "needs a str `name`"),
                                       ("NeedsArguments", "could not be constructed with no arguments")])
def test_a_plugin_that_cannot_be_an_embedder_is_a_config_error(cls: str, says: str) -> None:
    spec = f"{__name__}:{cls}"
    Settings(model_name=spec)  # the class declares the protocol: the setting itself is valid
    with pytest.raises(ConfigError, match=f"^QABOT_MODEL: .*{says}"):
        make_embedder(spec)
