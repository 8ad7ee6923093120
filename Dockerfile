# engagehub container image: slim Python, non-root user, health check on /healthz.
# Build: docker build -t engagehub .   Run: docker run -p 8000:8000 -v engagehub:/data engagehub
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engagehub ./engagehub
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENGAGEHUB_HOST=0.0.0.0 \
    ENGAGEHUB_PORT=8000 \
    ENGAGEHUB_DATABASE_URL=sqlite:////data/engagehub.db
RUN groupadd --system --gid 10001 engagehub \
    && useradd --system --uid 10001 --gid engagehub --home-dir /data --shell /usr/sbin/nologin engagehub \
    && mkdir -p /data \
    && chown engagehub:engagehub /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER engagehub
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# The slim image has no curl: the check uses Python's standard library.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["engagehub"]
CMD ["serve"]
