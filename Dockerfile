# Placeholder until the packaging issue: the image runs `keyturn run`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir -c requirements.lock .
USER 65532:65532
ENTRYPOINT ["keyturn", "run"]
