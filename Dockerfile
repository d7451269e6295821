# The operator image: the locked dependencies, then the package. Built by the kind e2e tier
# (`make test-e2e`) and by users; CI here has no Docker engine.
FROM python:3.11-slim AS build
ENV UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --python python3
COPY operator ./operator
COPY crds ./crds
RUN uv sync --frozen --no-dev --python python3

FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home computegrid
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH
USER 10001
EXPOSE 8080 9090
ENTRYPOINT ["computegrid"]
CMD ["run", "--all-namespaces"]
