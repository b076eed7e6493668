# AgentDesk image: one image, every process of the Procfile (web is the default command).
FROM python:3.13-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    AGENTDESK_VAR_DIR=/app/var

WORKDIR /app
RUN useradd --create-home --uid 1000 agentdesk
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=agentdesk:agentdesk . .
# collectstatic needs settings but no services; a throwaway key is enough to import them.
RUN SECRET_KEY=build-only-key-not-used-at-runtime-000000000 REDIS_URL=redis://unused:6379/0 \
    python manage.py collectstatic --noinput -v0 \
 && mkdir -p /app/var && chown -R agentdesk:agentdesk /app/var
USER agentdesk
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "agentdesk.asgi:application"]
