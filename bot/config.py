"""Settings: the one place that reads the environment (through pydantic-settings).

Every field is read from `QABOT_<FIELD NAME>` unless it names another variable (`QABOT_MODEL`, the `SLACK_*`
ones); an empty variable means "use the default". A malformed value is a `ConfigError` naming the variable.
"""

from __future__ import annotations

import importlib
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

DEFAULT_MODEL = "all-MiniLM-L6-v2"
PREFIX = "QABOT_"
# What a QABOT_MODEL plugin class must have: the members of bot.embed.embedders.Embedder (a test keeps them equal).
EMBEDDER_MEMBERS = ("name", "dim", "embed_documents", "embed_query")

# The environment `Settings.from_env(env)` reads instead of os.environ while it builds (None = os.environ).
_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("qabot_settings_env", default=None)


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def _named(variable: str) -> Any:
    """A field read from `variable` (not QABOT_<field>), still settable by its field name in code."""
    return AliasChoices(variable)


def is_plugin_spec(model: str) -> bool:
    """Whether a QABOT_MODEL value names an embedder class ("module:Class") rather than the bundled model."""
    return ":" in model


def embedder_class(spec: str) -> type:
    """The class "module:Class" names, checked to declare the Embedder protocol; ValueError says what is wrong.

    `name` and `dim` must be declared on the class (an annotation, as the protocol has, or a class attribute), so
    the check needs no instance: constructing one may load a model.
    """
    module_name, _, qualname = spec.strip().partition(":")
    if not module_name or not qualname:
        raise ValueError(f"{spec!r} is not a bundled model name or a plugin spec 'module:Class'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any failure while importing the plugin is a bad setting
        raise ValueError(f"cannot import {module_name!r} from {spec!r} ({type(exc).__name__}: {exc})") from None
    for part in qualname.split("."):
        if not hasattr(target, part):
            raise ValueError(f"module {module_name!r} has no {qualname!r} (from {spec!r})")
        target = getattr(target, part)
    if not isinstance(target, type):
        raise ValueError(f"{spec!r} is not a class")
    declared = {name for klass in target.__mro__ for name in (*vars(klass), *getattr(klass, "__annotations__", {}))}
    missing = [m for m in EMBEDDER_MEMBERS if m not in declared
               or (m.startswith("embed_") and not callable(getattr(target, m, None)))]
    if missing:
        raise ValueError(f"{spec!r} is not an Embedder: it lacks {', '.join(missing)} "
                         f"(the protocol in bot/embed/embedders.py: {', '.join(EMBEDDER_MEMBERS)})")
    return target


class _MappingEnv(EnvSettingsSource):
    """The environment source over a given mapping instead of os.environ (for `Settings.from_env(env)`)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._mapping, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class Settings(BaseSettings):
    """All runtime settings; build with `Settings.from_env()` or `get_settings()` (or directly, in tests)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, frozen=True, extra="ignore",
                                      validate_by_name=True, validate_by_alias=True)

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    state_dir: Path = Path("var")
    model_name: str = Field(DEFAULT_MODEL, validation_alias=_named("QABOT_MODEL"))
    model_path: str | None = None
    embed_batch_size: int = 32
    top_k: int = 5
    max_question_chars: int = 2000
    admin_token: str | None = None
    public_url: str | None = None  # the address users reach the page at; a trailing "/" is dropped
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()  # comma-separated
    # Bearer keys of /v1 (OpenAI-compatible) and /mcp, comma-separated; none = open (fine on loopback only).
    api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    log_questions: bool = False
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    slack_bot_token: str | None = Field(None, validation_alias=_named("SLACK_BOT_TOKEN"))
    slack_signing_secret: str | None = Field(None, validation_alias=_named("SLACK_SIGNING_SECRET"))
    slack_app_token: str | None = Field(None, validation_alias=_named("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_named("SLACK_API_URL"))
    slack_command: str = "/ask"
    # In a Slack DM outside a thread, the questions of the last this many seconds are the conversation.
    slack_dm_window_s: float = Field(600.0, gt=0, allow_inf_nan=False)
    watch_quiet_ms: int = 300
    watch_max_wait_ms: int = 2000
    watch_polling: bool = False
    torch_threads: int = 1  # intra-op threads per request in `qabot serve`; 0 = torch's default
    # How questions are embedded: "onnx-int8" (int8 export), "onnx" (fp32) or "torch".
    query_encoder: Literal["onnx", "onnx-int8", "torch"] = "onnx-int8"
    encoder_dir: Path | None = None  # where the ONNX export lives; None = INDEX_DIR/encoder
    # Fitted fusion weights (bench/fit_weights.py writes bench/fitted-weights.json); None = the hand-set ranking
    # and refusal rule, which the fitted ones did not beat out-of-fold (BENCHMARKS.md, "Fitted weights").
    fusion_weights: Path | None = None
    workers: int = Field(1, ge=1)  # `qabot serve` processes sharing the port (each loads the index; one per core)
    answer_threads: int = Field(2, ge=1)  # questions one process answers at once; more wait (1 with --workers)
    index_poll_ms: int = Field(2000, ge=1)  # how often a server looks for a generation written by another process
    max_header_bytes: int = Field(64 * 1024, ge=1)  # largest request head `qabot serve` reads; 431 above
    max_header_count: int = Field(100, ge=1)  # most header fields in one request head; 431 above
    header_timeout_s: float = Field(10.0, gt=0, allow_inf_nan=False)  # seconds to send a whole request head
    body_timeout_s: float = Field(30.0, gt=0, allow_inf_nan=False)  # seconds to send a request's body after its head
    max_file_bytes: int = Field(4 * 1024 * 1024, ge=1)  # a bigger file is skipped unread (largest real: 13 KB)
    max_passages_per_file: int = Field(200, ge=1)  # a file making more passages is skipped (largest real: 22)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Values given in code, then the environment (no .env or secrets files: deployments set variables)."""
        env = _ENV.get()
        return init_settings, (env_settings if env is None else _MappingEnv(settings_cls, env))

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _no_trailing_slash(cls, value: Any) -> Any:
        return (value.rstrip("/") or None) if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("model_name")
    @classmethod
    def _embedder(cls, value: str) -> str:
        value = value.strip()
        if value == "fake":
            raise ValueError("the fake embedder is a test helper, not a model: use tests.fakes:FakeEmbedder "
                             "(from the repo root)")
        if is_plugin_spec(value):
            embedder_class(value)
        return value

    @field_validator("query_encoder", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read settings from `env` (default: the process environment); ConfigError names a bad variable."""
        token = _ENV.set(None if env is None else dict(env))
        try:
            return cls()
        except ValidationError as exc:
            raise ConfigError("; ".join(_describe(error) for error in exc.errors())) from None
        finally:
            _ENV.reset(token)

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[0])
        return PREFIX + field.upper()

    @property
    def encoder_folder(self) -> Path:
        """The folder of the exported ONNX query encoder."""
        return self.encoder_dir or self.index_dir / "encoder"

    def replace(self, **changes: object) -> "Settings":
        """A copy with some fields changed (None values are ignored)."""
        return self.model_copy(update={k: v for k, v in changes.items() if v is not None})


def _describe(error: Any) -> str:
    """One validation error as "VARIABLE must …, got '…'"."""
    loc = str(error["loc"][0]) if error.get("loc") else ""
    field = next((name for name, f in Settings.model_fields.items()
                  if name == loc or Settings.variable(name).lower() == loc.lower()), None)
    name = Settings.variable(field) if field else loc
    message = str(error["msg"]).removeprefix("Value error, ")  # pydantic's prefix for a validator's ValueError
    return f"{name}: {message}, got {error.get('input')!r}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings.from_env()
