# govhub: one image for the hub and the nodes (the command chooses the role).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GOVHUB_DATA_DIR=/var/lib/govhub
WORKDIR /app

COPY pyproject.toml README.md ./
COPY hub ./hub
COPY adapters ./adapters
COPY schemas ./schemas
COPY nodes.toml ./
RUN pip install --no-cache-dir . \
    && useradd --system --home-dir /var/lib/govhub --create-home govhub

USER govhub
ENTRYPOINT ["govhub"]
CMD ["--help"]
