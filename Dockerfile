FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatcher ./dispatcher
COPY workers ./workers
RUN pip install --no-cache-dir . flower
ENV DISPATCHER_CONFIG=/config/dispatcher.toml
# Every service runs the migrations first: `db upgrade` is idempotent.
CMD ["sh", "-c", "dispatcher db upgrade && dispatcher web --host 0.0.0.0 --port 8000"]
