# Mirrorbot: a small non-root image that runs `mirrorbot serve`.
# Build: docker build -t mirrorbot .    Run: docker run --env-file .env -p 3000:3000 -v mirrorbot-data:/data mirrorbot

# --- build: wheels of the package and its dependencies -----------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime: only the installed wheels, no compilers or build tools ---------------------
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin mirrorbot \
    && mkdir /data \
    && chown mirrorbot:mirrorbot /data
# DL3013 (pin versions): --no-index installs exactly the wheels the build stage made.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels gitlab-mirrorbot
USER 10001:10001
WORKDIR /data
ENV PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/mirrorbot.db
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status != 200)"]
# Exec form: SIGTERM reaches mirrorbot directly, which stops cleanly within 10 s.
CMD ["mirrorbot", "serve", "--host", "0.0.0.0", "--port", "3000"]
