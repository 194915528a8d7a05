# Quantsite production image: daphne serves the site; the same image runs the qcluster
# worker and the one-shot migrate (docker-compose.yml). README "Deployment".
# bookworm pinned: its postgresql-client (15) matches the compose file's postgres:15, and
# pg_dump refuses a server newer than itself (manage.py backup).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QUANTSITE_DATA_DIR=/app/var

RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 quantsite \
    && useradd --system --uid 10001 --gid quantsite --home-dir /app \
        --shell /usr/sbin/nologin quantsite

WORKDIR /app
# requirements first: the pip layer is reused while only the code changes
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

# the code stays root's (the site cannot rewrite itself); only the data dir and the
# backups dir are the site user's
COPY . .
RUN mkdir -p /app/var /backups && chown quantsite:quantsite /app/var /backups

USER quantsite
# static files collected into the image (whitenoise serves them); no key of any kind
# stays in the image: a throwaway signing key, and whatever development key files the
# settings generated into the data dir meanwhile are deleted
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput \
    && find /app/var -mindepth 1 -maxdepth 1 ! -name staticfiles -exec rm -rf {} +

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "deploy/healthcheck.py"]
CMD ["daphne", "--bind", "0.0.0.0", "--port", "8000", "quantsite.asgi:application"]
