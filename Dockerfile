# The agent image: `python -m agent run`, configured by RAY_ACK_SCALER_* variables (README).
#
# The base is pinned by the digest of its multi-platform index, next to the tag it stood for:
# python:3.11.10-slim-bookworm as Renovate pinned it in nalabelle/build
# (images/digests.Dockerfile, commit e522f90c79f133b9cc6dfc77ad6912a1710e6252, 2024-10-19).
# It was not pulled here (no registry access). To move it: `docker buildx imagetools inspect
# python:3.11-slim` shows the tag's current version and digest; change the tag and the digest
# together (and LOCK_PYTHON in the Makefile, then `make lock`, if the minor version changes).
FROM python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The runtime dependencies exactly as locked (`make lock`): every version pinned, every file
# checked against its hash; pip refuses anything the lock does not name.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
# Then the package alone (see .dockerignore); no dev extras in the image. Its build backend
# (setuptools, from pyproject's build-system) runs in pip's isolated build environment and does
# not stay in the image.
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY functions ./functions
RUN pip install --no-deps . && pip check && rm -rf /src

# A numeric non-root user, so `runAsNonRoot: true` can be verified by the kubelet.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin scaler
USER 10001
WORKDIR /

# The probe listener of deploy/agent.yaml (RAY_ACK_SCALER_PROBE_ADDRESS=0.0.0.0:8081): /healthz,
# /readyz, /metrics. /status stays on 127.0.0.1:8080 inside the container.
EXPOSE 8081
ENTRYPOINT ["python", "-m", "agent", "run"]
