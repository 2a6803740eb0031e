# streetwatch, CPU image: `streetwatch serve` with the shipped models and examples; settings from a mounted file.
#
#   docker build -t streetwatch .
#   docker run -p 8080:8080 -v "$PWD/settings.yaml:/etc/streetwatch/settings.yaml:ro" \
#              -v streetwatch-data:/var/lib/streetwatch streetwatch
#
# deploy/compose.yaml runs it with PostgreSQL and mosquitto (README, "Docker"). Inference only: the [train] extra
# (ultralytics, torch) is not installed; the [postgres] extra (psycopg) is, for database_url.
FROM python:3.11-slim

# fonts-noto-cjk: a Chinese font for whatever the container renders itself (the font the install scripts install;
# issue 18). Today the evidence labels are ASCII and the review page is drawn by the reviewer's browser.
# opencv-data: OpenCV's Haar cascades, with which service.privacy blurs faces and plates (without them no evidence
# is served while privacy.blur_faces/blur_plates are on).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk opencv-data \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    YOLO_OFFLINE=1 \
    STREETWATCH_MODELS=/app/models

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY detector ./detector
COPY service ./service
COPY datasets ./datasets
COPY benchmarks ./benchmarks
RUN pip install '.[postgres]'
# Baked in: the ONNX models with their cards (found through STREETWATCH_MODELS) and the example configuration.
COPY models ./models
COPY examples ./examples

# A non-root user owns only its data folder. The starter camera configuration is copied into the image's data
# folder, so a new named volume mounted there starts with it (Docker copies a new volume's initial content from
# the image) and the API can rewrite it (config_path in deploy/settings.yaml).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/streetwatch --no-create-home streetwatch \
    && mkdir -p /var/lib/streetwatch /etc/streetwatch \
    && chown streetwatch:streetwatch /var/lib/streetwatch \
    && chmod 0700 /var/lib/streetwatch
COPY --chown=streetwatch:streetwatch deploy/config.yaml /var/lib/streetwatch/config.yaml
USER streetwatch
VOLUME ["/var/lib/streetwatch"]
EXPOSE 8080

# /health answers 200 while the process serves (its body says ok or degraded; /ready is the 503 probe).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]

ENTRYPOINT ["streetwatch"]
CMD ["serve", "--settings", "/etc/streetwatch/settings.yaml", "--host", "0.0.0.0", "--port", "8080"]
