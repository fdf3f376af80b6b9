# syntax=docker/dockerfile:1
# Rapport bot image: small, non-root, one process (`rapport run`), configured by RAPPORT_* vars.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY flows ./flows
COPY insights ./insights
COPY storage ./storage
RUN python -m venv /opt/rapport \
 && /opt/rapport/bin/pip install --no-compile '.[postgres]'

FROM python:3.11-slim
ENV PATH=/opt/rapport/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    RAPPORT_DATABASE_URL=sqlite+aiosqlite:////data/rapport.db
RUN groupadd --system rapport && useradd --system --gid rapport --home-dir /data rapport \
 && mkdir -p /data && chown rapport:rapport /data
COPY --from=build /opt/rapport /opt/rapport
USER rapport
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8443
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["rapport", "health"]
ENTRYPOINT ["rapport"]
CMD ["run"]
