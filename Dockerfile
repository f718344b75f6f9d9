# The exchange image: the API (`exchange serve`), the Celery worker (`exchange worker`), the
# scheduler (`exchange beat`) and the one-shot jobs (`exchange db upgrade`,
# `exchange admin bootstrap`) all run from this one image; docker-compose.yml picks the verb.

# ---- build: install the package and its dependencies into a virtualenv -------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY . .
# Every dependency, direct and transitive, at the version CI tested (constraints.txt).
RUN pip install --no-cache-dir -c constraints.txt .

# ---- runtime: the virtualenv only, no sources, no build tools, not root ------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXCHANGE_HOME=/var/lib/exchange

RUN groupadd --system --gid 10001 exchange \
 && useradd --system --uid 10001 --gid exchange --no-log-init \
        --home-dir /var/lib/exchange --create-home --shell /usr/sbin/nologin exchange

COPY --from=build /opt/venv /opt/venv

USER exchange:exchange
WORKDIR /var/lib/exchange

EXPOSE 8000

# Liveness only (the process answers). Readiness (database, storage, broker) is /readyz,
# which docker-compose.yml checks for the api service; worker and beat override this check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["exchange", "serve", "--host", "0.0.0.0", "--port", "8000"]
