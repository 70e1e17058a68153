"""The Prometheus registry behind GET /metrics: per-route request counts and latencies (the app's
middleware records them) and the knowledge base's queues and ingest totals, read when scraped."""

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from app.service import KnowledgeBase


class KnowledgeBaseCollector:
    """Read when scraped: mmkb_queue_length{queue=...} (ingest jobs queued and running, from
    the database so jobs of every process count; asks in flight in this process) and the
    ingest totals of this process, whether the API, the admin console or a job ingested."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        lengths = self.kb.queue_lengths()
        gauge = GaugeMetricFamily("mmkb_queue_length", "Work waiting or in progress", labels=["queue"])
        gauge.add_metric(["ingest_queued"], lengths.ingest_queued)
        gauge.add_metric(["ingest_running"], lengths.ingest_running)
        gauge.add_metric(["asks_in_flight"], lengths.asks_in_flight)
        queue = self.kb.admission.state()
        gauge.add_metric(["asks_waiting_for_generator"], queue.waiting)
        gauge.add_metric(["asks_writing"], queue.writing)
        yield gauge
        yield CounterMetricFamily("mmkb_ingested_pages", "Pages ingested", value=self.kb.ingest_totals.pages)
        yield CounterMetricFamily("mmkb_ingest_seconds", "Seconds spent ingesting", value=self.kb.ingest_totals.seconds)


class Metrics:
    """One registry per app (not the process-global default), so two apps in one process (the
    tests make many) never register the same metric twice."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mmkb_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram("mmkb_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry)
        self.registry.register(KnowledgeBaseCollector(kb))
