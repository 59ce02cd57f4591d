"""The HTTP API and web page: `create_app(settings, answerer=None)` (FastAPI)."""

import base64
import asyncio
import hashlib
import hmac
import logging
import re
import sys
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp
from swagger_ui_bundle import swagger_ui_path

from bot.index import store
from bot.serve.slots import AnswerSlots
from bot.answer.answerer import Answerer, NotReady
from bot.serve.schemas import (MAX_FILTER_CHARS, MAX_SEARCH_K, NOT_BLANK, AskResponse, ErrorResponse,
                            HealthResponse, InterviewsResponse, ReadyResponse, ReindexResponse, SearchResponse,
                            SourceResponse, ask_request_model)
from bot.serve.observe import ApiMetrics, HeadAsGet, ObserveRequests, SecurityHeaders
from bot.config import Settings
from bot.serve.maintainer import IndexMaintainer
from bot.serve.api_keys import warn_if_open
from bot.serve.mcp_server import McpHttp
from bot.serve.openai_api import openai_router
from bot.serve.sources import source_body

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
MAX_CHUNK_ID_CHARS = 100
BAD_INPUT = {400: {"model": ErrorResponse, "description": "Malformed JSON"},
             422: {"model": ErrorResponse, "description": "Invalid input; `detail` says what is wrong"}}
NOT_READY = {503: {"model": ErrorResponse, "description": "The index is not loaded yet"}}
ADMIN_ERRORS = {401: {"model": ErrorResponse, "description": "Missing or wrong bearer token"},
                403: {"model": ErrorResponse, "description": "Admin endpoints are disabled (no token configured)"}}
# The chat page loads only its own /static/app.js and /static/style.css and talks only to this API: nothing
# inline, nothing from elsewhere, and no other site may frame it (clickjacking).
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "request"


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "string_pattern_mismatch":
        return "must not be blank"
    if error.get("type") == "missing":
        return "is required"
    if tuple(error.get("loc", ())) == ("body",) and error.get("type") in {"model_attributes_type", "dict_type"}:
        return 'must be a JSON object such as {"question": "..."} sent with Content-Type: application/json'
    return str(error.get("msg", "is invalid"))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, reworded: malformed JSON is a 400, every other problem is named in `detail`."""
    errors = list(exc.errors())
    for e in errors:
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx") or {}
            return JSONResponse({"detail": f"malformed JSON: {ctx.get('error', 'cannot parse the body')}"},
                                status_code=400)
    safe = [{"loc": [str(p) for p in e.get("loc", ())], "msg": _message(e), "type": str(e.get("type", ""))}
            for e in errors]
    detail = "; ".join(f"{_where(tuple(e['loc']))}: {e['msg']}" for e in safe) or "invalid request"
    return JSONResponse({"detail": detail, "errors": safe}, status_code=422)


def _unparsable_body(cause: BaseException | None) -> str:
    """What was wrong with a JSON body that FastAPI could not parse, from the exception it raised `from`."""
    if isinstance(cause, UnicodeDecodeError):  # a ValueError too: test it first
        return "malformed JSON: the body cannot be decoded (send UTF-8 JSON)"
    if isinstance(cause, RecursionError):
        return "malformed JSON: nested too deeply"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):  # Python's int digit limit
        return f"malformed JSON: a number has too many digits (at most {sys.get_int_max_str_digits()})"
    return "malformed JSON: the body cannot be parsed"


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = str(exc.detail)
    if exc.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's, raised `from` why
        detail = _unparsable_body(exc.__cause__)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _not_ready(request: Request, exc: NotReady) -> JSONResponse:
    return JSONResponse({"detail": "the index is not loaded yet; try again shortly"}, status_code=503,
                        headers={"Retry-After": "2"})


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)


def _page_headers(csp: str) -> dict[str, str]:
    """The headers of an HTML page: its Content-Security-Policy, and no framing for old browsers either."""
    return {"Content-Security-Policy": csp, "X-Frame-Options": "DENY"}


def _inline_script_sources(html: str) -> str:
    """CSP sources that allow exactly the inline scripts of `html` (their sha256), and no other inline script."""
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
                    for body in re.findall(r"<script>(.*?)</script>", html, flags=re.S))


class HardenedFastAPI(FastAPI):
    """FastAPI with SecurityHeaders around its whole middleware stack.

    Outside, not through add_middleware: FastAPI's ServerErrorMiddleware (which sends the 500s) sits outside
    every middleware added that way, and its responses need the headers too."""

    def build_middleware_stack(self) -> ASGIApp:  # noqa: D102 - FastAPI's, wrapped
        return SecurityHeaders(super().build_middleware_stack())


def _load_index(answerer: Answerer, maintainer: IndexMaintainer, state: Any) -> None:
    """Load the model and the index once; build the index first if there is none."""
    try:
        if not answerer.ready:
            warm_up = getattr(answerer.embedder, "warm_up", None)
            if warm_up is not None:
                warm_up()
            try:
                answerer.reload()
            except store.IndexNotFound:
                logger.info("no index in %s yet; building it from %s", answerer.settings.index_dir,
                            answerer.settings.corpus_dir)
                maintainer.rebuild_now()
            if not answerer.ready:
                state.load_error = maintainer.last_error or "the index could not be built"
    except store.StoreError as exc:
        state.load_error = str(exc)
        logger.error("index not loaded: %s", exc)
    except Exception as exc:  # noqa: BLE001 - keep the process up and say why in /readyz
        state.load_error = f"index not loaded: {exc}"
        logger.exception("index not loaded")
    finally:
        state.loaded.set()
        maintainer.start()


def create_app(settings: Settings, answerer: Answerer | None = None, *,
               maintainer: IndexMaintainer | None = None, poll_seconds: float | None = None,
               load_before_serving: bool = False) -> FastAPI:
    """The FastAPI app: JSON API, admin, metrics, the chat page, and Slack events when configured.

    With `load_before_serving` the index is loaded during the lifespan startup, so the server accepts no
    connection before it can answer (each `serve --workers` process); otherwise it loads in the background
    and /readyz says 503 meanwhile (one process: /healthz answers from the first moment)."""
    answerer = answerer or Answerer(settings)
    if poll_seconds is None:
        poll_seconds = settings.index_poll_ms / 1000
    maintainer = maintainer or IndexMaintainer(answerer, poll_seconds=poll_seconds)
    slots = AnswerSlots(settings.answer_threads)
    metrics = ApiMetrics(answerer)
    mcp_http = McpHttp(settings, answerer, slots, not_ready=lambda: app.state.load_error)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        if load_before_serving:  # uvicorn starts accepting only once this startup is complete
            await asyncio.to_thread(_load_index, answerer, maintainer, app.state)
        else:
            threading.Thread(target=_load_index, args=(answerer, maintainer, app.state), name="qabot-load-index",
                             daemon=True).start()
        try:
            async with mcp_http.running():
                yield {}
        finally:
            maintainer.stop()
            slots.close()

    app = HardenedFastAPI(title="qabot", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                          description="Answers questions from interview transcripts with verbatim, cited quotes.")
    app.state.settings = settings
    app.state.answerer = answerer
    app.state.maintainer = maintainer
    app.state.metrics = metrics
    app.state.loaded = threading.Event()
    app.state.load_error = None

    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(NotReady, _not_ready)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(HeadAsGet)  # innermost: the metrics and the request log still say HEAD
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(ObserveRequests, metrics=metrics, log_questions=settings.log_questions,
                       known_paths=lambda: {getattr(r, "path", "") for r in app.routes})

    AskRequest = ask_request_model(settings.max_question_chars, settings.top_k)

    @app.post("/ask", response_model=AskResponse, responses={**BAD_INPUT, **NOT_READY}, tags=["answers"])
    async def ask(body: AskRequest, request: Request) -> dict[str, Any]:  # type: ignore[valid-type]
        """Answer a question with verbatim, cited quotes, or say the interviews don't cover it."""
        request.state.question = body.question
        answer = await slots.run(answerer.ask, body.question.strip(), body.top_k, body.project or None,
                                 body.adopter or None, tuple(body.history))
        request.state.answered = answer.answered
        return answer.to_dict()

    @app.get("/search", response_model=SearchResponse, responses={**BAD_INPUT, **NOT_READY}, tags=["answers"])
    async def search(request: Request,
               q: str = Query(min_length=1, max_length=settings.max_question_chars, pattern=NOT_BLANK,
                              description="What to look for."),
               k: int = Query(10, ge=1, le=MAX_SEARCH_K, description=f"How many passages (1-{MAX_SEARCH_K})."),
               project: str | None = Query(None, max_length=MAX_FILTER_CHARS),
               adopter: str | None = Query(None, max_length=MAX_FILTER_CHARS)) -> dict[str, Any]:
        """Ranked passages for a query."""
        request.state.question = q
        results = await slots.run(answerer.search, q.strip(), k, project or None, adopter or None)
        return {"query": q, "results": [p.to_dict() for p in results]}

    @app.get("/sources/{chunk_id}", response_model=SourceResponse,
             responses={404: {"model": ErrorResponse, "description": "No passage with this id"}, **BAD_INPUT,
                        **NOT_READY}, tags=["answers"])
    def source(chunk_id: str = PathParam(min_length=1, max_length=MAX_CHUNK_ID_CHARS)) -> dict[str, Any]:
        """A passage with its heading path and the passages of its section around it."""
        body = source_body(answerer.index, chunk_id)  # one generation for the whole response
        if body is None:
            raise HTTPException(404, f"no passage with id {chunk_id!r} in the index (it may have been re-indexed)")
        return body

    @app.get("/interviews", response_model=InterviewsResponse, responses=NOT_READY, tags=["answers"])
    def interviews() -> dict[str, Any]:
        """The indexed interviews with project, adopter, interviewee, date and chunk count."""
        items = answerer.interviews()
        return {"count": len(items), "interviews": items}

    @app.get("/healthz", response_model=HealthResponse, tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}},
             tags=["operations"])
    async def readyz() -> Any:
        """200 once an index is loaded, else 503 with the reason."""
        if answerer.ready:
            index = answerer.index
            watch = maintainer.watcher.status() if maintainer.watcher is not None else {}
            body = ReadyResponse(ready=True, generation=index.generation, chunks=len(index.chunks),
                                 interviews=len(index.manifest.files), detail=watch.get("error"))
        else:
            body = ReadyResponse(ready=False, detail=app.state.load_error or "the index is loading")
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    @app.get("/metrics", response_class=Response, tags=["operations"],
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    def prometheus() -> Response:
        """Prometheus metrics: requests and latency per route, answered or not, index size and generation."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    bearer = HTTPBearer(auto_error=False, description="QABOT_ADMIN_TOKEN")

    def require_admin(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        """Allow only `Authorization: Bearer <QABOT_ADMIN_TOKEN>`; compare in constant time."""
        if not settings.admin_token:
            raise HTTPException(403, "admin endpoints are disabled: set QABOT_ADMIN_TOKEN to enable them")
        given = credentials.credentials.encode("utf-8") if credentials else b""
        if not credentials or not hmac.compare_digest(given, settings.admin_token.encode("utf-8")):
            raise HTTPException(401, "missing or wrong admin token (send Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.post("/admin/reindex", status_code=202, response_model=ReindexResponse, dependencies=[Depends(require_admin)],
              responses={409: {"model": ErrorResponse, "description": "A reindex is already running"},
                         **ADMIN_ERRORS, **BAD_INPUT}, tags=["admin"])
    def reindex(full: bool = Query(False, description="Re-embed everything, not only changed files.")) -> Any:
        """Start an incremental rebuild in the background; the new index is swapped in when it is done."""
        if not maintainer.reindex(full=full):
            raise HTTPException(409, "a reindex is already running; try again when it ends")
        return {"started": True, "status": maintainer.status()}

    @app.get("/admin/status", response_model=dict[str, Any], dependencies=[Depends(require_admin)],
             responses=ADMIN_ERRORS, tags=["admin"])
    def admin_status() -> dict[str, Any]:
        """Index generation, build time, last build's changes, and any error."""
        return maintainer.status()

    @app.get("/", response_class=FileResponse, include_in_schema=False)
    def page() -> FileResponse:
        """The chat web page."""
        return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=_page_headers(PAGE_CSP))

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    def swagger_page() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="qabot API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    # Swagger UI starts from one inline script in the page FastAPI writes: allow that script by its hash.
    docs_csp = PAGE_CSP.replace("script-src 'self'",
                                f"script-src 'self' {_inline_script_sources(bytes(swagger_page().body).decode())}")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        """Swagger UI over /openapi.json, served from the swagger-ui-bundle package (no CDN)."""
        page = swagger_page()
        page.headers.update(_page_headers(docs_csp))
        return page

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    app.include_router(openai_router(settings, answerer, slots))  # /v1: OpenAI-compatible chat (openai_api.py)
    app.add_route("/mcp", mcp_http, include_in_schema=False)  # MCP over streamable HTTP (mcp_server.py)
    warn_if_open(settings.api_keys, settings.host)

    from bot import slack
    if slack.mount(app, settings, answerer):
        logger.info("Slack HTTP events mounted at /slack/events")
    return app
