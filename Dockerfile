# Rapport bot image: small, non-root, one process (`rapport run`), configured by RAPPORT_* vars.
# No `# syntax=` line: it makes BuildKit fetch a frontend image, which an offline build cannot.

# Any Debian-based image with Python 3.11: the official slim one by default; `make image` builds
# a local one from Debian's packages (devtools/image/image.sh) where no registry is reachable.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONFIG_FILE=/etc/pip-build/pip.conf
# Debian's own python3.11 keeps venv's pip in a separate package.
RUN python3.11 -m ensurepip --version >/dev/null 2>&1 \
 || { apt-get update -q && apt-get install -qy --no-install-recommends python3.11-venv \
      && rm -rf /var/lib/apt/lists/*; }
# The pip index to use (and its CA), when `make image` found one configured: this stage only.
COPY devtools/image/pip/ /etc/pip-build/
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY app ./app
COPY bot ./bot
COPY cli ./cli
COPY flows ./flows
COPY insights ./insights
COPY storage ./storage
COPY web ./web
# Compiled here, once: the runtime user cannot write bytecode, and without it every
# `rapport health` compiles all it imports (2 s of the HEALTHCHECK's 5). No pip at run time.
RUN python3.11 -m venv /opt/rapport \
 && /opt/rapport/bin/pip install -q '.[postgres]' \
 && /opt/rapport/bin/pip uninstall -q -y pip setuptools

FROM ${BASE}
ENV PATH=/opt/rapport/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/var/cache/matplotlib \
    RAPPORT_DATABASE_URL=sqlite+aiosqlite:////data/rapport.db
# A fixed numeric id, so that orchestrators can check it is not root (runAsNonRoot). A base
# image's own pip goes too: nothing is installed at run time.
RUN groupadd --gid 10001 rapport \
 && useradd --no-log-init --uid 10001 --gid rapport --no-create-home --home-dir /data \
      --shell /usr/sbin/nologin rapport \
 && mkdir -p /data && chown rapport:rapport /data \
 && if python3.11 -m pip --version >/dev/null 2>&1; then \
      python3.11 -m pip uninstall -q -y pip setuptools wheel; fi
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
