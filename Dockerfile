# One image for the web server, the worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    VAR_DIR=/app/var

WORKDIR /app
RUN useradd --create-home --uid 1000 rollback

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

COPY . .
RUN SECRET_KEY=collectstatic-only-never-used-to-sign-anything-at-run-time python manage.py collectstatic --noinput \
    && mkdir -p /app/var /anchors && chown -R rollback /app/var /anchors

USER rollback
EXPOSE 8000
CMD ["gunicorn", "rollback_console.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
