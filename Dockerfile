# Two stages: build the wheel from the source tree, then install only that wheel (not
# editable, no source checkout) into a slim image that runs as an unprivileged user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY outreach ./outreach
COPY tasks ./tasks
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/outreach-*.whl && rm /tmp/outreach-*.whl \
    && useradd --system --create-home --home-dir /home/outreach --shell /usr/sbin/nologin outreach
USER outreach
WORKDIR /home/outreach
# OUTREACH_SECRET_KEY must be set (>= 32 bytes): every entry point refuses the built-in value
EXPOSE 8000
# --preload: the master builds the app once, so a refused start is one line from the master
CMD ["gunicorn", "--preload", "-w", "4", "-b", "0.0.0.0:8000", "outreach:create_app()"]
