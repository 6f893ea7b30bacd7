"""Which billed network boundary a request's bytes cross: internet, inter-region, inter-zone, intra-zone, unknown.

Used by every instrumentation that counts bytes on the wire (httpx, botocore). Build one
:class:`EgressClassifier` per instrumentation with :meth:`EgressClassifier.from_settings` and call
:meth:`EgressClassifier.classify` with the destination host; results are cached per host.

How a destination is located, first match wins:

1. **User rules** (``egress_rules`` option, env ``SPANLEDGER_EGRESS_RULES``), in the order written. Each
   rule is ``PATTERN=TARGET``; rules are separated by commas, semicolons or newlines. ``PATTERN`` is

   * a host suffix: ``.corp.example`` or ``*.corp.example`` (matches ``corp.example`` and any sub-domain),
   * an exact host: ``db.internal``, or ``*`` (every host; put it last as a catch-all),
   * an IP network in CIDR form ``10.0.0.0/8`` or a single address ``192.0.2.7`` (IP-literal hosts only:
     no DNS lookup is ever made in the request path).

   ``TARGET`` is a boundary (``internet``, ``inter_region``, ``inter_zone``, ``intra_zone``, ``unknown``)
   or a location: ``region:eu-west-1`` or ``zone:eu-west-1a``, compared with where this process runs.
   Example: ``10.1.0.0/16=zone:us-east-1a, 10.0.0.0/8=region:us-east-1, .svc.cluster.local=intra_zone, *=internet``.
2. **AWS regional endpoints** (``s3.eu-west-1.amazonaws.com``, ``bucket.s3.eu-west-1.amazonaws.com``,
   ``bedrock-runtime.us-east-1.amazonaws.com``, ``runtime.sagemaker.us-east-1.amazonaws.com``, legacy
   ``s3-eu-west-1.amazonaws.com``, VPC endpoint names, ``.amazonaws.com.cn``): the label that looks like a
   region is the destination's region. ``s3.amazonaws.com`` is ``us-east-1``.
3. **Public IP literals** (``ipaddress`` says global): ``internet``.
4. Anything else: ``unknown``. Loopback, private addresses and bare host names are *not* assumed to be
   intra-zone: a private address can be in another zone or, over a peering or VPN, another region.

Locations become boundaries against the process's own region and zone: the ``region`` option (env
``SPANLEDGER_REGION``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``) and ``availability_zone`` option (env
``SPANLEDGER_AVAILABILITY_ZONE``); else the resource's ``cloud.region`` / ``cloud.availability_zone``:

* destination zone known and own zone known: same zone ``intra_zone``, same region ``inter_zone``, else
  ``inter_region``;
* destination region known, own region known and different: ``inter_region``;
* same region, destination zone unknown: ``unknown`` for a user rule (it may be another zone), but
  ``intra_zone`` for an AWS regional *service* endpoint: AWS bills no data transfer between a resource
  and a same-region service endpoint (S3, Bedrock, SageMaker runtime), so for the bill it is intra-zone;
* own region unknown: ``unknown``.

The ``spanledger.egress.bytes`` metric is recorded through :func:`egress_byte_counter` (one per meter,
shared by every instrumentation): it sums in process and reports the totals through an
``ObservableCounter`` at collection time, because two synchronous ``Counter.add`` calls per HTTP request
(one per direction) cost more than the rest of spanledger's per-request work together. Its ``add`` has
the ``Counter.add`` signature, so code written for a counter can use it unchanged; do not also create
a synchronous counter of the same name on the same meter (the exporter would see the name twice).
"""

from __future__ import annotations

import ipaddress
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.util.types import AttributeValue

from .semconv import (
    CLOUD_AVAILABILITY_ZONE,
    CLOUD_REGION,
    METRIC_SPANLEDGER_EGRESS_BYTES,
    NETWORK_IO_DIRECTION,
    SPANLEDGER_EGRESS_BOUNDARY,
    NetworkIoDirectionValues,
    SpanledgerEgressBoundaryValues,
)

__all__ = [
    "Boundary",
    "EgressByteCounter",
    "EgressClassifier",
    "EgressRule",
    "Location",
    "aws_endpoint_region",
    "egress_byte_counter",
    "parse_egress_rules",
]

Boundary = SpanledgerEgressBoundaryValues

_BOUNDARIES = {member.value: member for member in Boundary}
_REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+$")
_LEGACY_S3_REGION = re.compile(r"^s3-([a-z]{2}(?:-gov)?-[a-z]+-\d+)$")
_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")
_CACHE_LIMIT = 4096
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Location:
    """Where a destination is: a fixed boundary, or a region and possibly a zone."""

    boundary: Boundary | None = None
    region: str | None = None
    zone: str | None = None


@dataclass(frozen=True)
class EgressRule:
    """One parsed ``PATTERN=TARGET`` rule; exactly one of ``suffix``, ``host``, ``network`` is set (or ``any``)."""

    text: str
    location: Location
    suffix: str | None = None
    host: str | None = None
    network: _IPNetwork | None = None
    any: bool = False

    def matches(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        if self.any:
            return True
        if self.network is not None:
            return address is not None and address.version == self.network.version and address in self.network
        if self.suffix is not None:
            return host == self.suffix[1:] or host.endswith(self.suffix)
        return host == self.host


def _zone_region(zone: str) -> str:
    """``us-east-1a`` -> ``us-east-1``; AWS zone ids (``use1-az1``) have no region text and are kept as is."""
    return zone[:-1] if zone and zone[-1].isalpha() and _REGION.match(zone[:-1]) else zone


def _parse_target(target: str, entry: str) -> Location:
    kind, _, value = target.partition(":")
    if value:
        value = value.strip().lower()
        if kind.strip() == "region" and value:
            return Location(region=value)
        if kind.strip() == "zone" and value:
            return Location(region=_zone_region(value), zone=value)
    elif target in _BOUNDARIES:
        return Location(boundary=_BOUNDARIES[target])
    raise ValueError(
        f"egress rule {entry!r}: target {target!r} is not one of {', '.join(_BOUNDARIES)}, "
        "region:<region> or zone:<zone>"
    )


def parse_egress_rules(text: str) -> tuple[EgressRule, ...]:
    """Parse the ``egress_rules`` option; raises ``ValueError`` naming the first bad entry."""
    rules = []
    for raw in re.split(r"[,;\n]", text):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        pattern, sep, target = entry.partition("=")
        pattern, target = pattern.strip().lower(), target.strip().lower()
        if not sep or not pattern or not target:
            raise ValueError(f"egress rule {entry!r}: expected PATTERN=TARGET, e.g. 10.0.0.0/8=region:us-east-1")
        location = _parse_target(target, entry)
        if pattern == "*":
            rules.append(EgressRule(entry, location, any=True))
            continue
        if pattern.startswith("*."):
            pattern = pattern[1:]
        if pattern.startswith("."):
            rules.append(EgressRule(entry, location, suffix=pattern))
            continue
        if "/" in pattern or _ip(pattern) is not None:
            try:
                network = ipaddress.ip_network(pattern, strict=False)
            except ValueError:
                raise ValueError(f"egress rule {entry!r}: {pattern!r} is not a valid CIDR network") from None
            rules.append(EgressRule(entry, location, network=network))
            continue
        if not re.fullmatch(r"[a-z0-9_.-]+", pattern):
            raise ValueError(f"egress rule {entry!r}: {pattern!r} is not a host, .suffix, CIDR or *")
        rules.append(EgressRule(entry, location, host=pattern))
    return tuple(rules)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def aws_endpoint_region(host: str) -> str | None:
    """The region of an AWS regional endpoint host name, or ``None`` if ``host`` is not one."""
    host = host.lower().rstrip(".")
    suffix = next((s for s in _AWS_SUFFIXES if host.endswith(s)), None)
    if suffix is None:
        return None
    labels = host[: -len(suffix)].split(".")
    for label in reversed(labels):
        if _REGION.match(label):
            return label
        legacy = _LEGACY_S3_REGION.match(label)
        if legacy:
            return legacy.group(1)
    if labels[-1] == "s3" or labels[-1].startswith("s3-external"):
        return "us-east-1"  # the global S3 endpoint serves us-east-1
    return None


class EgressClassifier:
    """Decides the boundary for a destination host; thread-safe, results cached per host."""

    def __init__(
        self, rules: tuple[EgressRule, ...] = (), *, region: str | None = None, zone: str | None = None
    ) -> None:
        self.rules = rules
        self.zone = zone.lower() if zone else None
        self.region = region.lower() if region else (_zone_region(self.zone) if self.zone else None)
        self._cache: dict[str, tuple[Boundary, str | None]] = {}

    @classmethod
    def from_settings(cls, settings: Any, resource_attributes: Mapping[str, Any] | None = None) -> EgressClassifier:
        """From the ``egress_rules``, ``region`` and ``availability_zone`` options, else the resource."""
        resource_attributes = resource_attributes or {}
        region = getattr(settings, "region", None) or _str_or_none(resource_attributes.get(CLOUD_REGION))
        zone = getattr(settings, "availability_zone", None) or _str_or_none(
            resource_attributes.get(CLOUD_AVAILABILITY_ZONE)
        )
        return cls(parse_egress_rules(getattr(settings, "egress_rules", "") or ""), region=region, zone=zone)

    def classify(self, host: str) -> Boundary:
        """The boundary bytes to or from ``host`` cross."""
        return self.locate(host)[0]

    def locate(self, host: str) -> tuple[Boundary, str | None]:
        """The boundary and, when known, the destination region (for ``cloud.region`` of the call)."""
        cached = self._cache.get(host)
        if cached is not None:
            return cached
        result = self._locate(host.lower().rstrip("."))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[host] = result
        return result

    def _locate(self, host: str) -> tuple[Boundary, str | None]:
        address = _ip(host)
        for rule in self.rules:
            if rule.matches(host, address):
                location = rule.location
                if location.boundary is not None:
                    return location.boundary, None
                return self._relative(location.region, location.zone, regional_service=False), location.region
        region = aws_endpoint_region(host)
        if region is not None:
            return self._relative(region, None, regional_service=True), region
        if address is not None and address.is_global:
            return Boundary.INTERNET, None
        return Boundary.UNKNOWN, None

    def _relative(self, region: str | None, zone: str | None, *, regional_service: bool) -> Boundary:
        if zone is not None and self.zone is not None:
            if zone == self.zone:
                return Boundary.INTRA_ZONE
            return Boundary.INTER_ZONE if _zone_region(zone) == _zone_region(self.zone) else Boundary.INTER_REGION
        if region is None or self.region is None:
            return Boundary.UNKNOWN
        if region != self.region:
            return Boundary.INTER_REGION
        return Boundary.INTRA_ZONE if regional_service else Boundary.UNKNOWN


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_TRANSMIT = NetworkIoDirectionValues.TRANSMIT.value
_RECEIVE = NetworkIoDirectionValues.RECEIVE.value


class EgressByteCounter:
    """``spanledger.egress.bytes`` for one meter: in-process sums reported by an ObservableCounter."""

    def __init__(self, meter: Meter) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], int] = {}
        spec = METRIC_SPANLEDGER_EGRESS_BYTES
        meter.create_observable_counter(
            spec.name, callbacks=[self._observe], unit=spec.unit, description=spec.description
        )

    def add(
        self, amount: int, attributes: Mapping[str, AttributeValue] | None = None, context: Context | None = None
    ) -> None:
        """Like ``Counter.add``; ``attributes`` must hold the boundary and ``network.io.direction``."""
        attributes = attributes or {}
        key = (str(attributes[SPANLEDGER_EGRESS_BOUNDARY]), str(attributes[NETWORK_IO_DIRECTION]))
        with self._lock:
            self._totals[key] = self._totals.get(key, 0) + amount

    def add_exchange(self, boundary: str, sent: int, received: int) -> None:
        """Both directions of one request/response across ``boundary``."""
        transmit, receive = (boundary, _TRANSMIT), (boundary, _RECEIVE)
        with self._lock:
            totals = self._totals
            totals[transmit] = totals.get(transmit, 0) + sent
            totals[receive] = totals.get(receive, 0) + received

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = list(self._totals.items())
        return [
            Observation(total, {SPANLEDGER_EGRESS_BOUNDARY: boundary, NETWORK_IO_DIRECTION: direction})
            for (boundary, direction), total in totals
        ]


_counters: weakref.WeakKeyDictionary[Meter, EgressByteCounter] = weakref.WeakKeyDictionary()
_counters_lock = threading.Lock()


def egress_byte_counter(meter: Meter) -> EgressByteCounter:
    """The one :class:`EgressByteCounter` of ``meter`` (created on first use)."""
    with _counters_lock:
        counter = _counters.get(meter)
        if counter is None:
            counter = _counters[meter] = EgressByteCounter(meter)
        return counter
