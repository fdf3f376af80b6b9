# syntax=docker/dockerfile:1
# Rapport bot image: small, non-root, one process (`rapport run`), configured by RAPPORT_* vars.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY bot ./bot
COPY cli ./cli
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
    MPLCONFIGDIR=/var/cache/matplotlib \
    RAPPORT_DATABASE_URL=sqlite+aiosqlite:////data/rapport.db
# A fixed numeric id, so that orchestrators can check it is not root (runAsNonRoot).
RUN groupadd --gid 10001 rapport \
 && useradd --no-log-init --uid 10001 --gid rapport --no-create-home --home-dir /data \
      --shell /usr/sbin/nologin rapport \
 && mkdir -p /data && chown rapport:rapport /data
COPY --from=build /opt/rapport /opt/rapport
# Matplotlib's font cache, built once here instead of on every container start.
RUN mkdir -p "$MPLCONFIGDIR" && python -c "import matplotlib.font_manager" \
 && chown -R rapport:rapport "$MPLCONFIGDIR"
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8443
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["rapport", "health"]
ENTRYPOINT ["rapport"]
CMD ["run"]
