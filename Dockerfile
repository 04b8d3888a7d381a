# syntax=docker/dockerfile:1
# Build: docker build -t mot .
# Run:   docker run -p 8000:8000 -v mot-data:/data mot
#        (PostgreSQL: -e MOT_DATABASE_URL=postgresql://user:pass@host/db)

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install .

FROM python:3.12-slim AS runtime
RUN useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin mot \
    && mkdir -p /data && chown mot /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
# Migrations run from here: `mot serve` applies them before serving.
COPY alembic.ini ./
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MOT_DATABASE_URL=sqlite:////data/mot.db \
    MOT_ENVIRONMENT=production
USER mot
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
CMD ["mot", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
