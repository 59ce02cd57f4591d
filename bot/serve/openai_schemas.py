"""Pydantic models of the OpenAI-compatible chat API (bot/serve/openai_api.py), so /openapi.json is truthful.

Requests accept and ignore the fields qabot has no use for (temperature, max_tokens, tools, ...): chat front ends
send them unasked. Responses carry OpenAI's fields plus one extra top-level `qabot` object, which OpenAI clients
keep as an unknown field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.serve.schemas import CitationOut, PassageOut

MAX_MODEL_CHARS = 200
MAX_MESSAGES = 1000
ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class ContentPart(BaseModel):
    """One part of a message's content; only `text` parts are read (images and the like are ignored)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=50)
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=MAX_MODEL_CHARS)


class StreamOptions(BaseModel):
    """OpenAI's `stream_options`: `include_usage` adds a last chunk with the usage."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """A chat completion request: the last user message is the question, earlier user messages its history."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=MAX_MODEL_CHARS,
                       description="`qabot`, or `qabot:<project>` for answers from that project's interviews only "
                                   "(GET /v1/models lists them).")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool | None = Field(default=False, description="Server-Sent Events in OpenAI's chunk format.")
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice is supported.")


class ModelCard(BaseModel):
    """One model: `qabot` (every interview) or `qabot:<project>`."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "qabot"


class ModelList(BaseModel):
    """The models this service answers as."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    """The answer as a chat message."""

    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(BaseModel):
    """The one choice of a completion."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    """Word pieces (of the embedding model's tokenizer) in the messages sent and in the answer; zeros when the
    tokenizer is not available, for every response of the process."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class QabotExtra(BaseModel):
    """qabot's own view of the answer: the citations behind the `[n]` markers of `content`."""

    answered: bool
    resolved_question: str = Field(description="The standalone question answered (a follow-up resolved against "
                                               "the earlier user messages).")
    citations: list[CitationOut]
    related: list[PassageOut] = Field(default_factory=list,
                                      description="Closest passages when the interviews don't answer.")
    took_ms: float


class ChatCompletion(BaseModel):
    """A non-streamed completion: one choice whose content is the answer, then its Sources."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None
    qabot: QabotExtra


class OpenAIError(BaseModel):
    """What went wrong, as OpenAI reports it."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    """Every 4xx/5xx body of /v1: `{"error": {"message", "type", "param", "code"}}`."""

    error: OpenAIError
