# The agent image: `python -m agent run`, configured by RAY_ACK_SCALER_* variables (README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package build needs (see .dockerignore); no dev extras in the image.
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY functions ./functions
RUN pip install . && rm -rf /src

# A numeric non-root user, so `runAsNonRoot: true` can be verified by the kubelet.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin scaler
USER 10001
WORKDIR /

EXPOSE 8080
ENTRYPOINT ["python", "-m", "agent", "run"]
