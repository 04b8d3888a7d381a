# syntax=docker/dockerfile:1
# Build: docker build -t mot .
# Run:   docker run -p 8000:8000 -e MOT_SECRET_KEY="$(openssl rand -hex 32)" -v mot-data:/data mot
#        (PostgreSQL: -e MOT_DATABASE_URL=postgresql://user:pass@host/db)

ARG PYTHON_IMAGE=python:3.12-slim

# The wheel is built as `pip install` from the repository would build it: the image runs
# what a user installs, migrations included.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
# Keep in step with pyproject.toml (a test checks it).
ARG MOT_VERSION=0.1.0
LABEL org.opencontainers.image.title="mot" \
      org.opencontainers.image.description="Moments of Truth: an experience-survey service that ranks the client touchpoints most in need of improvement." \
      org.opencontainers.image.version="${MOT_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.12-slim"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheel is mounted, not copied: it leaves no layer behind.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir "/wheels/mot-${MOT_VERSION}-py3-none-any.whl"
# A numeric user: orchestrators that refuse to run as root (runAsNonRoot) can tell it is
# not root without reading /etc/passwd.
RUN groupadd --system --gid 10001 mot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /srv --shell /usr/sbin/nologin mot \
    && mkdir -p /data /srv \
    && chown 10001:10001 /data
WORKDIR /srv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MOT_DATABASE_URL=sqlite:////data/mot.db \
    MOT_ENVIRONMENT=production
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
# `mot serve` applies pending migrations (shipped in the package) before serving.
CMD ["mot", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
