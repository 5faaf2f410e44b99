"""Prometheus metrics through `prometheus-client`: counters and latency histograms, one or several processes.

Names and labels are declared where they are counted (`inc(name, help, **labels)`, `observe(...)`): a metric is
created the first time it is used, with the label names of that first use. Several worker processes on one host
(`bot serve --workers N`) set `PROMETHEUS_MULTIPROC_DIR`: prometheus-client then keeps every process's values in
files there, and `/metrics`, whichever worker answers it, reports the sum over all of them.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

log = logging.getLogger(__name__)

# The `_created` companion series double every counter and mean nothing to an operator here.
prometheus_client.disable_created_metrics()

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
# Seconds: webhook acks live in the first buckets (LINE wants a quick 200), answers and LINE sends in the later ones.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


# One histogram for every channel's answers (the engine turn: retrieval, composition, the optional LLM, the store).
ANSWER_SECONDS = "answer_seconds"
ANSWER_HELP = "Time to answer one message (the engine turn), by channel"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self) -> None:
        # A registry per app: tests build many apps in one process, and each must count on its own.
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._metrics: dict[str, Any] = {}
        self._broken: set[str] = set()

    def inc(self, name: str, help_text: str, amount: float = 1.0, **labels: str) -> None:
        metric = self._get(Counter, name, help_text, labels)
        if metric is not None:
            self._labelled(name, metric, labels, lambda m: m.inc(amount))

    def observe(self, name: str, help_text: str, seconds: float, **labels: str) -> None:
        metric = self._get(Histogram, name, help_text, labels, buckets=LATENCY_BUCKETS)
        if metric is not None:
            self._labelled(name, metric, labels, lambda m: m.observe(seconds))

    def render(self) -> str:
        """The text exposition format (UTF-8 text)."""
        if multiprocess_dir():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry).decode("utf-8")
        return generate_latest(self.registry).decode("utf-8")

    def _get(self, kind: Any, name: str, help_text: str, labels: dict[str, str], **extra: Any) -> Any:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = kind(name, help_text, sorted(labels), registry=self.registry, **extra)
                self._metrics[name] = metric
            return metric

    def _labelled(self, name: str, metric: Any, labels: dict[str, str], act: Any) -> None:
        try:
            act(metric.labels(**labels) if labels else metric)
        except ValueError as exc:  # a call site with other label names: a bug to fix, never a failed request
            if name not in self._broken:
                self._broken.add(name)
                log.error("metrics: %s used with labels %s: %s", name, sorted(labels), exc)
