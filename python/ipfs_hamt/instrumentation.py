"""Tracing and metrics with py-hamt 3.6.0's ``py_hamt.instrumentation`` interface.

Two layers, as in py-hamt:

* **OpenTelemetry** (when the ``opentelemetry`` package is installed): a tracer and a meter
  named ``"py_hamt"``; spans ``py_hamt.cas.load``, ``py_hamt.sharded_store.get``,
  ``py_hamt.hamt_store.get``; counters and histograms ``py_hamt.cas.load.*``,
  ``py_hamt.hamt.lookup.*``, ``py_hamt.hamt.node_load.*``, ``py_hamt.zarr.get.*``,
  ``py_hamt.sharded_store.*``. Without an OpenTelemetry SDK configured they cost next to
  nothing; without the package they are skipped.
* **An in-process recorder**, on when ``IPFS_RETRIEVAL_TRACE`` or ``PY_HAMT_TRACE`` is one of
  ``True true 1 yes Y T``: counters, byte totals, timing samples (at most
  ``IPFS_RETRIEVAL_TRACE_SAMPLE_LIMIT`` per series, default 2000) read with :func:`snapshot`.
  Every function is a no-op while it is off, and :func:`snapshot` returns ``{}``.

The Rust engine does its block loads natively, so per-block CAS and HAMT-node events are not
reported from inside it; the store-level calls (``get`` of the Zarr stores) are.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

try:  # OpenTelemetry is optional for ipfs_hamt (py-hamt requires it).
    from opentelemetry import metrics, trace
    from opentelemetry.trace import Status, StatusCode

    _OTEL = True
except ImportError:  # pragma: no cover - exercised only without opentelemetry
    _OTEL = False

    class _NoSpan:
        def is_recording(self) -> bool:
            return False

        def set_attribute(self, key: str, value: Any) -> None:
            pass

        def record_exception(self, exc: BaseException) -> None:
            pass

        def set_status(self, status: Any) -> None:
            pass

        def __enter__(self) -> "_NoSpan":
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

    class _NoTracer:
        def start_as_current_span(self, name: str, attributes: Any = None) -> _NoSpan:
            return _NoSpan()

    class _NoInstrument:
        def add(self, amount: float, attributes: Any = None) -> None:
            pass

        def record(self, amount: float, attributes: Any = None) -> None:
            pass

    class _NoMeter:
        def create_counter(self, *a: Any, **k: Any) -> _NoInstrument:
            return _NoInstrument()

        create_histogram = create_counter

    class _Trace:
        """The part of ``opentelemetry.trace`` this module uses."""

        _span = _NoSpan()

        def get_tracer(self, name: str) -> _NoTracer:
            return _NoTracer()

        def get_current_span(self) -> _NoSpan:
            return self._span

    class _Metrics:
        def get_meter(self, name: str) -> _NoMeter:
            return _NoMeter()

    trace = _Trace()  # type: ignore[assignment]
    metrics = _Metrics()  # type: ignore[assignment]

    class StatusCode:  # type: ignore[no-redef]
        ERROR = "ERROR"

    def Status(code: Any, description: str = "") -> Any:  # type: ignore[no-redef]  # noqa: N802
        return (code, description)


TRUE_VALUES = {"True", "true", "1", "yes", "Y", "T"}

_TRACER = trace.get_tracer("py_hamt")
_METER = metrics.get_meter("py_hamt")


def _instrument(kind: str, name: str, unit: str, description: str) -> Any:
    make = _METER.create_counter if kind == "counter" else _METER.create_histogram
    return make(name, unit=unit, description=description)


_CAS_REQUESTS = _instrument("counter", "py_hamt.cas.load.requests", "1", "CAS loads.")
_CAS_BYTES = _instrument("counter", "py_hamt.cas.load.response_bytes", "By", "CAS bytes.")
_CAS_RETRIES = _instrument("counter", "py_hamt.cas.load.retries", "1", "CAS load retries.")
_CAS_DURATION = _instrument("histogram", "py_hamt.cas.load.duration", "s", "CAS load time.")
_LOOKUPS = _instrument("counter", "py_hamt.hamt.lookup.requests", "1", "HAMT lookups.")
_LOOKUP_TIME = _instrument("histogram", "py_hamt.hamt.lookup.duration", "s", "Lookup time.")
_LOOKUP_DEPTH = _instrument("histogram", "py_hamt.hamt.lookup.depth", "1", "Lookup depth.")
_NODE_LOADS = _instrument("counter", "py_hamt.hamt.node_load.requests", "1", "Node loads.")
_NODE_BYTES = _instrument("counter", "py_hamt.hamt.node_load.bytes", "By", "Node bytes.")
_NODE_TIME = _instrument("histogram", "py_hamt.hamt.node_load.duration", "s", "Node load time.")
_ZARR_GETS = _instrument("counter", "py_hamt.zarr.get.requests", "1", "Zarr store gets.")
_ZARR_TIME = _instrument("histogram", "py_hamt.zarr.get.duration", "s", "Zarr get time.")
_SHARD_LOADS = _instrument(
    "counter", "py_hamt.sharded_store.shard_load.requests", "1", "Shard loads."
)
_SHARD_TIME = _instrument(
    "histogram", "py_hamt.sharded_store.shard_load.duration", "s", "Shard load time."
)
_SHARD_ENTRIES = _instrument(
    "histogram", "py_hamt.sharded_store.shard_entries", "1", "Entries per loaded shard."
)


@dataclass
class TraceContext:
    """An open ``py_hamt.cas.load`` span and what :func:`end_cas_load` needs to close it."""

    started_at: float
    span: Any
    span_context_manager: Any
    metric_attributes: dict[str, Any]
    custom_metrics_enabled: bool


def _attributes(attributes: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """OpenTelemetry-safe attributes: ``None`` values dropped, other types as ``str``."""
    out: dict[str, Any] = {}
    for k, v in (attributes or {}).items():
        if v is None:
            continue
        out[k] = v if isinstance(v, (str, bool, int, float)) else str(v)
    return out


@contextmanager
def span(name: str, attributes: Optional[dict[str, Any]] = None) -> Iterator[Any]:
    """A span named ``name``; an exception leaving it is recorded on it and re-raised."""
    with _TRACER.start_as_current_span(name, attributes=_attributes(attributes)) as s:
        try:
            yield s
        except Exception as exc:
            if s.is_recording():
                s.record_exception(exc)
                s.set_status(Status(StatusCode.ERROR, str(exc)))
            raise


def _set_current_span_attributes(attributes: dict[str, Any]) -> None:
    current = trace.get_current_span()
    if current.is_recording():
        for k, v in _attributes(attributes).items():
            current.set_attribute(k, v)


def enabled() -> bool:
    """Whether the in-process recorder is on (env ``IPFS_RETRIEVAL_TRACE``/``PY_HAMT_TRACE``)."""
    return any(os.getenv(v, "False") in TRUE_VALUES for v in ("IPFS_RETRIEVAL_TRACE", "PY_HAMT_TRACE"))


def active() -> bool:
    """Whether the stores should report their calls: the recorder is on, or an OpenTelemetry
    SDK (a tracer provider other than the API's default) is configured. Without either every
    span and metric would be a no-op, so the stores skip them on their hot paths."""
    if enabled():
        return True
    if not _OTEL:
        return False
    return type(trace.get_tracer_provider()).__name__ not in (
        "ProxyTracerProvider",
        "NoOpTracerProvider",
    )


def _sample_limit() -> int:
    try:
        return max(0, int(os.getenv("IPFS_RETRIEVAL_TRACE_SAMPLE_LIMIT", "2000")))
    except ValueError:
        return 2000


class _Recorder:
    """Everything recorded since the last :func:`reset`."""

    def __init__(self, label: Optional[str] = None) -> None:
        self.label = label
        self.started = time.perf_counter()
        self.counters: defaultdict[str, float] = defaultdict(float)
        self.bytes: defaultdict[str, float] = defaultdict(float)
        self.time_total: defaultdict[str, float] = defaultdict(float)
        self.time_count: defaultdict[str, int] = defaultdict(int)
        self.samples: defaultdict[str, list[float]] = defaultdict(list)
        self.cids: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()
        self.inflight = 0
        self.max_inflight = 0
        self.limit = _sample_limit()

    def sample(self, name: str, v: float) -> None:
        if len(self.samples[name]) < self.limit:
            self.samples[name].append(v)

    def timing(self, name: str, seconds: float) -> None:
        self.time_total[name] += seconds
        self.time_count[name] += 1
        self.sample(name, seconds)

    def measure(self, name: str, v: float) -> None:
        self.counters[name + ".total"] += v
        self.counters[name + ".count"] += 1
        self.sample(name, v)


_LOCK = threading.RLock()
_REC = _Recorder()


def reset(label: Optional[str] = None) -> None:
    """Starts a new recording (named ``label`` in the snapshot)."""
    global _REC
    if enabled():
        with _LOCK:
            _REC = _Recorder(label)


def increment(name: str, amount: int = 1) -> None:
    """Adds ``amount`` to counter ``name``."""
    if enabled():
        with _LOCK:
            _REC.counters[name] += amount


def add_bytes(name: str, amount: int) -> None:
    """Adds ``amount`` bytes to byte total ``name``."""
    if enabled():
        with _LOCK:
            _REC.bytes[name] += amount


def observe(name: str, seconds: float) -> None:
    """Records one duration of series ``name``."""
    if enabled():
        with _LOCK:
            _REC.timing(name, seconds)


def value(name: str, measured_value: float) -> None:
    """Records one measured value of series ``name``."""
    if enabled():
        with _LOCK:
            _REC.measure(name, measured_value)


def begin_cas_load(cid: Any, has_range: bool) -> TraceContext:
    """Opens the span of one CAS load; close it with :func:`end_cas_load`."""
    attrs = {"py_hamt.cas.has_range": has_range}
    cm = _TRACER.start_as_current_span(
        "py_hamt.cas.load", attributes=_attributes({"py_hamt.cid": str(cid), **attrs})
    )
    s = cm.__enter__()
    on = enabled()
    if on:
        with _LOCK:
            r = _REC
            r.counters["cas_load.range" if has_range else "cas_load.full"] += 1
            r.counters["cas_load.total"] += 1
            r.cids[str(cid)] += 1
            r.inflight += 1
            r.max_inflight = max(r.max_inflight, r.inflight)
    return TraceContext(time.perf_counter(), s, cm, attrs, on)


def end_cas_load(
    trace_context: Optional[TraceContext],
    *,
    byte_count: int = 0,
    retries: int = 0,
    status: str = "ok",
) -> None:
    """Closes a CAS load opened by :func:`begin_cas_load`."""
    if trace_context is None:
        return
    seconds = time.perf_counter() - trace_context.started_at
    attrs = {**trace_context.metric_attributes, "py_hamt.cas.status": status}
    _CAS_REQUESTS.add(1, attrs)
    _CAS_BYTES.add(byte_count, attrs)
    _CAS_RETRIES.add(retries, attrs)
    _CAS_DURATION.record(seconds, attrs)
    s = trace_context.span
    if s.is_recording():
        s.set_attribute("py_hamt.cas.status", status)
        s.set_attribute("py_hamt.cas.response_bytes", byte_count)
        s.set_attribute("py_hamt.cas.retries", retries)
        if status != "ok":
            s.set_status(Status(StatusCode.ERROR, status))
    if trace_context.custom_metrics_enabled:
        with _LOCK:
            r = _REC
            r.inflight = max(0, r.inflight - 1)
            r.counters["cas_load.status." + status] += 1
            r.counters["cas_load.retries"] += retries
            r.bytes["cas_load.response_bytes"] += byte_count
            r.timing("cas_load.latency_seconds", seconds)
    trace_context.span_context_manager.__exit__(None, None, None)


def record_hamt_node_load(*, cache_hit: bool, seconds: float, byte_count: int = 0) -> None:
    """One HAMT node fetched (or served from the node cache)."""
    attrs = {"py_hamt.cache_hit": cache_hit}
    _NODE_LOADS.add(1, attrs)
    _NODE_BYTES.add(byte_count, attrs)
    _NODE_TIME.record(seconds, attrs)
    _set_current_span_attributes(
        {"py_hamt.hamt.node_load.cache_hit": cache_hit, "py_hamt.hamt.node_load.bytes": byte_count}
    )
    if enabled():
        with _LOCK:
            r = _REC
            r.counters["hamt_node_load.cache_hit" if cache_hit else "hamt_node_load.cache_miss"] += 1
            r.counters["hamt_node_load.total"] += 1
            r.bytes["hamt_node_load.bytes"] += byte_count
            r.timing("hamt_node_load.latency_seconds", seconds)


def record_hamt_lookup(
    key: str, *, depth: int, node_loads: int, node_cache_hits: int, found: bool, seconds: float
) -> None:
    """One HAMT key lookup."""
    attrs = {"py_hamt.hamt.lookup.found": found}
    _LOOKUPS.add(1, attrs)
    _LOOKUP_TIME.record(seconds, attrs)
    _LOOKUP_DEPTH.record(depth, attrs)
    _set_current_span_attributes(
        {
            "py_hamt.hamt.lookup.key": key,
            "py_hamt.hamt.lookup.depth": depth,
            "py_hamt.hamt.lookup.node_loads": node_loads,
            "py_hamt.hamt.lookup.node_cache_hits": node_cache_hits,
            "py_hamt.hamt.lookup.found": found,
        }
    )
    if enabled():
        with _LOCK:
            r = _REC
            r.counters["hamt_lookup.total"] += 1
            r.counters["hamt_lookup.found" if found else "hamt_lookup.missing"] += 1
            r.timing("hamt_lookup.latency_seconds", seconds)
            r.measure("hamt_lookup.depth", depth)
            r.measure("hamt_lookup.node_loads", node_loads)
            r.measure("hamt_lookup.node_cache_hits", node_cache_hits)
            r.keys["hamt:" + key] += 1


def record_zarr_get(
    *,
    store: str,
    key: str,
    kind: str,
    hit: bool,
    seconds: float,
    byte_range: bool = False,
    shard_idx: Optional[int] = None,
) -> None:
    """One ``get`` of a Zarr store (``store`` is ``sharded_store`` or ``hamt_store``)."""
    attrs = {
        "py_hamt.zarr.store": store,
        "py_hamt.zarr.kind": kind,
        "py_hamt.zarr.hit": hit,
        "py_hamt.zarr.byte_range": byte_range,
    }
    _ZARR_GETS.add(1, attrs)
    _ZARR_TIME.record(seconds, attrs)
    _set_current_span_attributes(
        {**attrs, "py_hamt.zarr.key": key, "py_hamt.zarr.shard_idx": shard_idx}
    )
    if enabled():
        p = f"{store}.get.{kind}"
        with _LOCK:
            r = _REC
            r.counters[p + ".total"] += 1
            r.counters[p + (".hit" if hit else ".miss")] += 1
            if byte_range:
                r.counters[p + ".byte_range"] += 1
            if shard_idx is not None:
                r.counters[f"{store}.shard.{shard_idx}.requests"] += 1
            r.timing(p + ".latency_seconds", seconds)
            r.keys[f"{store}:{key}"] += 1


def record_shard_load(*, shard_idx: int, cache_hit: bool, seconds: float, entries: int = 0) -> None:
    """One shard resolved for a read (from the cache or the CAS)."""
    attrs = {"py_hamt.cache_hit": cache_hit}
    _SHARD_LOADS.add(1, attrs)
    _SHARD_TIME.record(seconds, attrs)
    if entries:
        _SHARD_ENTRIES.record(entries, attrs)
    _set_current_span_attributes(
        {
            "py_hamt.sharded_store.shard_idx": shard_idx,
            "py_hamt.sharded_store.shard_cache_hit": cache_hit,
            "py_hamt.sharded_store.shard_entries": entries,
        }
    )
    if enabled():
        with _LOCK:
            r = _REC
            r.counters["sharded_store.shard_cache." + ("hit" if cache_hit else "miss")] += 1
            r.counters["sharded_store.shard_cache.total"] += 1
            r.timing("sharded_store.shard_cache.latency_seconds", seconds)
            if entries:
                r.measure("sharded_store.shard_entries", entries)
            r.counters[f"sharded_store.shard.{shard_idx}.loads"] += 1


def _distribution(values: list[float], total: float, count: int) -> dict[str, Any]:
    """count/avg/sample_count and, with samples, min/p50/p95/p99/max."""
    if count == 0:
        return {"count": 0}
    out: dict[str, Any] = {"count": count, "avg": total / count, "sample_count": len(values)}
    if values:
        v = sorted(values)
        last = len(v) - 1

        def pct(p: float) -> float:
            return v[min(last, max(0, round(last * p)))]

        out.update(min=v[0], p50=statistics.median(v), p95=pct(0.95), p99=pct(0.99), max=v[-1])
    return out


def snapshot() -> dict[str, Any]:
    """The recording so far (``{}`` when the recorder is off)."""
    if not enabled():
        return {}
    with _LOCK:
        r = _REC
        series = {
            k[: -len(".count")]
            for k in r.counters
            if k.endswith(".count") and k[: -len(".count")] + ".total" in r.counters
        }
        return {
            "enabled": True,
            "label": r.label,
            "elapsed_seconds": time.perf_counter() - r.started,
            "counters": dict(r.counters),
            "bytes": dict(r.bytes),
            "timings": {
                n: _distribution(r.samples.get(n, []), t, r.time_count[n])
                for n, t in r.time_total.items()
            },
            "values": {
                n: _distribution(
                    r.samples.get(n, []), r.counters[n + ".total"], int(r.counters[n + ".count"])
                )
                for n in series
            },
            "cas_load_unique_cids": len(r.cids),
            "cas_load_duplicate_requests": sum(c - 1 for c in r.cids.values() if c > 1),
            "cas_load_top_cids": r.cids.most_common(20),
            "zarr_top_keys": r.keys.most_common(50),
            "max_inflight_cas_loads": r.max_inflight,
            "sample_limit": r.limit,
        }
