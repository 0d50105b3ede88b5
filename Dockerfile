FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# requirements.lock pins every package with its hashes (made from requirements.txt, see docs/operations.md):
# the image gets exactly the versions the tests ran with, and a tampered download fails the build.
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
COPY . .
RUN useradd --create-home --uid 10001 triage && mkdir -p /app/state && chown -R triage /app/state && chmod 700 /app/state
USER triage
# Ledger, maildir, audit CSV, tokens and the trained model live here: keep it on a persistent volume.
VOLUME ["/app/state"]
# Healthy: a cycle succeeded within 3 poll intervals, no sink queue too old, the mailbox authorized.
HEALTHCHECK --interval=1m --timeout=20s --start-period=3m --retries=3 CMD ["python", "run.py", "health"]
# SIGTERM finishes the current message and exits 0; give it time (docker stop -t 60). SIGHUP re-reads config.yaml.
STOPSIGNAL SIGTERM
CMD ["python", "run.py"]
