FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home --uid 10001 triage && mkdir -p /app/state && chown -R triage /app/state && chmod 700 /app/state
USER triage
# Ledger, maildir, audit CSV, tokens and the trained model live here: keep it on a persistent volume.
VOLUME ["/app/state"]
# SIGTERM finishes the current message and exits 0; give it time (docker stop -t 60).
STOPSIGNAL SIGTERM
CMD ["python", "run.py"]
