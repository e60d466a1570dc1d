"""Gunicorn settings for the Aidline API (``gunicorn -c gunicorn.conf.py wsgi:app``).

The API is CPU-bound Python between short database round trips, so it scales with processes
(one per core, the GIL allows no more) plus a few threads each to overlap those round trips
and keep HTTP connections alive (the sync worker closes every connection). Measured on the
2-core machine by ``make bench`` (bench/README.md). Override with the environment:
WEB_CONCURRENCY (processes), GUNICORN_THREADS, GUNICORN_WORKER_CLASS, GUNICORN_BIND.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", 4))
# Keep-alive between a client (or the load balancer) and the worker threads.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
