"""Settings: the one place that reads the environment."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _env_positive(env: dict[str, str], name: str, default: int) -> int:
    value = _env_int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be 1 or more, got {value}")
    return value


def _env_seconds(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if not 0 < value < float("inf"):
        raise ConfigError(f"{name} must be more than 0 seconds, got {raw!r}")
    return value


def _env_bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_choice(env: dict[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _env_list(env: dict[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """All runtime settings; build with `Settings.from_env()` or `get_settings()`."""

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    state_dir: Path = Path("var")
    model_name: str = DEFAULT_MODEL
    model_path: str | None = None
    embed_batch_size: int = 32
    top_k: int = 5
    max_question_chars: int = 2000
    admin_token: str | None = None
    public_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    log_questions: bool = False
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_command: str = "/ask"
    watch_quiet_ms: int = 300
    watch_max_wait_ms: int = 2000
    watch_polling: bool = False
    torch_threads: int = 1  # intra-op threads per request in `qabot serve`; 0 = torch's default
    query_encoder: str = "onnx-int8"  # "onnx-int8" (int8 export), "onnx" (fp32) or "torch": how questions are embedded
    encoder_dir: Path | None = None  # where the ONNX export lives; None = INDEX_DIR/encoder
    # Fitted fusion weights (bench/fit_weights.py writes bench/fitted-weights.json); None = the hand-set ranking
    # and refusal rule, which the fitted ones did not beat out-of-fold (BENCHMARKS.md, "Fitted weights").
    fusion_weights: Path | None = None
    workers: int = 1  # `qabot serve` processes sharing the port (each loads the index; one per core)
    answer_threads: int = 2  # questions one process answers at once; more wait their turn (1 with --workers)
    index_poll_ms: int = 2000  # how often a server looks for a generation written by another process
    max_header_bytes: int = 64 * 1024  # largest request head (request line + headers) `qabot serve` reads; 431 above
    max_header_count: int = 100  # most header fields in one request head; 431 above
    header_timeout_s: float = 10.0  # seconds a client gets to send a whole request head before it is disconnected
    max_file_bytes: int = 4 * 1024 * 1024  # a bigger interview file is skipped unread (the largest real one: 13 KB)
    max_passages_per_file: int = 200  # an interview that makes more passages is skipped (the largest real one: 22)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Read settings from `env` (default: the process environment)."""
        env = dict(os.environ if env is None else env)
        return cls(
            corpus_dir=Path(env.get("QABOT_CORPUS_DIR") or "corpus"),
            index_dir=Path(env.get("QABOT_INDEX_DIR") or "index"),
            state_dir=Path(env.get("QABOT_STATE_DIR") or "var"),
            model_name=env.get("QABOT_MODEL") or DEFAULT_MODEL,
            model_path=env.get("QABOT_MODEL_PATH") or None,
            embed_batch_size=_env_int(env, "QABOT_EMBED_BATCH_SIZE", 32),
            top_k=_env_int(env, "QABOT_TOP_K", 5),
            max_question_chars=_env_int(env, "QABOT_MAX_QUESTION_CHARS", 2000),
            admin_token=env.get("QABOT_ADMIN_TOKEN") or None,
            public_url=(env.get("QABOT_PUBLIC_URL") or "").rstrip("/") or None,
            cors_origins=_env_list(env, "QABOT_CORS_ORIGINS"),
            log_questions=_env_bool(env, "QABOT_LOG_QUESTIONS", False),
            log_level=(env.get("QABOT_LOG_LEVEL") or "INFO").upper(),
            host=env.get("QABOT_HOST") or "127.0.0.1",
            port=_env_int(env, "QABOT_PORT", 8000),
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_api_url=env.get("SLACK_API_URL") or "https://slack.com/api/",
            slack_command=env.get("QABOT_SLACK_COMMAND") or "/ask",
            watch_quiet_ms=_env_int(env, "QABOT_WATCH_QUIET_MS", 300),
            watch_max_wait_ms=_env_int(env, "QABOT_WATCH_MAX_WAIT_MS", 2000),
            watch_polling=_env_bool(env, "QABOT_WATCH_POLLING", False),
            torch_threads=_env_int(env, "QABOT_TORCH_THREADS", 1),
            encoder_dir=Path(env["QABOT_ENCODER_DIR"]) if env.get("QABOT_ENCODER_DIR") else None,
            fusion_weights=Path(env["QABOT_FUSION_WEIGHTS"]) if env.get("QABOT_FUSION_WEIGHTS") else None,
            query_encoder=_env_choice(env, "QABOT_QUERY_ENCODER", ("onnx", "onnx-int8", "torch"), "onnx-int8"),
            workers=_env_positive(env, "QABOT_WORKERS", 1),
            answer_threads=_env_positive(env, "QABOT_ANSWER_THREADS", 2),
            index_poll_ms=_env_positive(env, "QABOT_INDEX_POLL_MS", 2000),
            max_header_bytes=_env_positive(env, "QABOT_MAX_HEADER_BYTES", 64 * 1024),
            max_header_count=_env_positive(env, "QABOT_MAX_HEADER_COUNT", 100),
            header_timeout_s=_env_seconds(env, "QABOT_HEADER_TIMEOUT_S", 10.0),
            max_file_bytes=_env_positive(env, "QABOT_MAX_FILE_BYTES", 4 * 1024 * 1024),
            max_passages_per_file=_env_positive(env, "QABOT_MAX_PASSAGES_PER_FILE", 200),
        )

    @property
    def encoder_folder(self) -> Path:
        """The folder of the exported ONNX query encoder."""
        return self.encoder_dir or self.index_dir / "encoder"

    def replace(self, **changes: object) -> "Settings":
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings.from_env()
