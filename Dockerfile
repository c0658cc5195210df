# govhub: one image for the hub and the nodes (the command chooses the role).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GOVHUB_DATA_DIR=/var/lib/govhub
WORKDIR /app

COPY pyproject.toml README.md ./
COPY hub ./hub
COPY adapters ./adapters
COPY schemas ./schemas
COPY nodes.toml ./
# The sample records go into the package (hub/samples), for `govhub demo` from any folder.
COPY examples/records ./examples/records
COPY examples/push ./examples/push
RUN pip install --no-cache-dir . \
    && useradd --system --home-dir /var/lib/govhub --create-home govhub

USER govhub
ENTRYPOINT ["govhub"]
CMD ["--help"]
