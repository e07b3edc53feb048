# syntax=docker/dockerfile:1
# Build: docker build -t sentiment .    Run: docker run -p 8080:8080 sentiment
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# CPU-only torch from PyTorch's CPU wheel index: the pinned torch on PyPI is the multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md LICENSE ./
COPY sentiment ./sentiment
COPY migrations ./migrations
COPY templates ./templates
# Not editable: the wheel carries templates/ and migrations/ inside the package, so the venv alone runs the service.
# The cluster extra (Dask, Parquet): the same image runs `dask worker` for `sentiment score --cluster`.
RUN pip install "./[cluster]"

FROM python:3.11-slim
RUN groupadd --gid 10001 sentiment \
    && useradd --create-home --uid 10001 --gid 10001 sentiment \
    && mkdir -p /data /models \
    && chown 10001:10001 /data /models
COPY --from=build /opt/venv /opt/venv
# SENTIMENT_UPLOADS=admin: the image takes data-set uploads from admins and API-key holders only (a laptop: anyone).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATABASE_URL=sqlite+aiosqlite:////data/sentiment.db \
    HF_HOME=/models/hf-cache \
    SENTIMENT_DATA_DIR=/data/datasets \
    SENTIMENT_CACHE_DIR=/data/cache \
    SENTIMENT_JOURNAL_DIR=/data/journal \
    SENTIMENT_MODELS_DIR=/models/trained \
    SENTIMENT_UPLOADS=admin \
    LOG_JSON=true
# Only the working directory (where a mounted .env is read): the installed venv needs no sources here.
WORKDIR /app
USER 10001:10001
VOLUME ["/data", "/models"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
CMD ["sentiment", "serve"]
