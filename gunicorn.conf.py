"""Gunicorn settings for the Aidline API (``gunicorn -c gunicorn.conf.py wsgi:app``).

The API is CPU-bound Python between short database round trips, so it scales with processes
(one per core, the GIL allows no more) plus, on PostgreSQL, a few threads each to overlap
those round trips (on SQLite one: server.config.web_threads says why); gthread keeps HTTP
connections alive (the sync worker closes every connection). Why each choice: ``make bench``
(bench/results/decisions.md). Override with the environment: WEB_CONCURRENCY
(processes), GUNICORN_THREADS, GUNICORN_WORKER_CLASS, GUNICORN_BIND. In production more
than one process needs REDIS_URL (shared rate limits): gunicorn refuses to start without it.
"""

from __future__ import annotations

import multiprocessing
import os

from server.config import web_threads

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
# gunicorn's gthread, except that a process whose threads are all taken leaves a new
# connection to an idle sibling (server/gthread.py): keep-alive connections stayed where a
# burst had put them, often all in one process.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "server.gthread.ThreadWorker")
threads = web_threads()
# Keep-alive between a client (or the load balancer) and the worker threads.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None


# The garbage collector's full collections walk every object the app holds (SQLAlchemy's
# metadata, the gazetteer, compiled-statement caches): each pauses the whole worker, long
# enough to set the status read's p99 (bench/results/decisions.md).
# After the app is loaded its objects are frozen out of collection, and young-generation
# collections run every 50,000 allocations instead of 700. GUNICORN_GC_THRESHOLD="" keeps
# Python's defaults.
gc_threshold = os.environ.get("GUNICORN_GC_THRESHOLD", "50000,20,100")


def on_starting(server):
    # Every process keeps its own memory:// rate-limit counters, so N workers multiplied
    # every limit by N (one phone, four sign-in codes a minute): production refuses to start.
    from server import limits
    from server.config import from_env

    limits.require_shared_storage(from_env(), processes=server.cfg.workers)


def post_worker_init(worker):
    if not gc_threshold:
        return
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*(int(x) for x in gc_threshold.split(",")))
