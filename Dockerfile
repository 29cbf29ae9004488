FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY argus argus
COPY streams streams
COPY detectors detectors
COPY video video
COPY evaluation evaluation
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["argus", "serve"]
