# syntax=docker/dockerfile:1
# The kgrec HTTP API (and CLI). Built by docker-compose.yml; on its own:
#   docker build -t kgrec-api .
#   docker run --rm -p 127.0.0.1:8000:8000 -e NEO4J_URI=bolt://HOST:7687 -e NEO4J_PASSWORD=... \
#     -e KGREC_API_KEY=... kgrec-api
#
# Note: torch comes from PyPI, whose Linux x86_64 wheels bundle the CUDA libraries (a large image).
# A CPU-only torch needs PyTorch's own package index, which this file deliberately does not use.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    KGREC_DATA_DIR=/data/kgrec

# Unprivileged user; /data/kgrec is created and owned by it here so that a fresh named volume mounted
# there starts with the same ownership.
RUN groupadd --system --gid 10001 kgrec \
    && useradd --system --uid 10001 --gid kgrec --create-home --home-dir /home/kgrec kgrec \
    && mkdir -p /data/kgrec \
    && chown kgrec:kgrec /data/kgrec

WORKDIR /app

# 1. Dependencies only, read from pyproject.toml: this heavy layer (torch, pandas, ...) is rebuilt only
#    when pyproject.toml changes, not on every code change.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 2. The project itself (its dependencies are already installed).
COPY README.md ./
COPY kgrec ./kgrec
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build

USER kgrec

EXPOSE 8000

CMD ["kgrec", "serve", "--host", "0.0.0.0", "--port", "8000"]
