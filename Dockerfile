FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY outreach ./outreach
COPY tasks ./tasks
COPY templates ./templates
RUN pip install --no-cache-dir -e . && useradd --system outreach
USER outreach
EXPOSE 8000
CMD ["gunicorn", "-w", "4", "-b", "0.0.0.0:8000", "outreach:create_app()"]
