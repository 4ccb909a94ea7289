# termwatch: the collector, rules, notifications, HTTP API and console in one image.
#   docker build -t termwatch .
#   docker run --env-file .env termwatch termwatch serve
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY termwatch ./termwatch
COPY terminals ./terminals
COPY collector ./collector
COPY rules ./rules
COPY simulator ./simulator
COPY dashboards ./dashboards
COPY notify ./notify
COPY bench ./bench
RUN python -m venv /opt/termwatch && /opt/termwatch/bin/pip install .

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/termwatch/bin:$PATH
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin termwatch
COPY --from=build /opt/termwatch /opt/termwatch
USER termwatch
WORKDIR /tmp
# 8080: HTTP API, console and /metrics (termwatch serve); 9464: /metrics of termwatch collector.
EXPOSE 8080 9464
CMD ["termwatch", "serve"]
