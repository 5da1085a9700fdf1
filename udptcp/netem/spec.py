"""Impairment specs: the ``key=value,...`` strings that ``udptcp netem`` takes on its command line.

Every quantity carries its unit (``delay=10ms``, ``rate=50mbit``, ``queue=64kb``) because a bare
number is where mistakes hide: a delay of "10" is ten milliseconds to one reader and ten seconds
to another, and "mbps" means megabits to some tools and megabytes to ``tc``. Sizes follow SI for
``kb``/``mb`` (1000, 1000**2 octets) and IEC for ``kib``/``mib`` (1024, 1024**2), so a queue
copied from a data sheet or from a kernel setting means what it says.

:func:`format_spec` is the inverse of :func:`parse_spec`: the relay prints what it applies in
the same syntax, so a line of its output can be pasted back onto a command line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from udptcp.netem.impair import FLAG_NAMES, Impairment

SpecItems = dict[str, dict[str, Any]]
"""Parsed keys of one spec: spec key -> the :class:`Impairment` fields it sets."""

SPEC_HELP = """\
impairment spec: comma-separated key=value pairs, e.g. loss=1%,delay=20ms,jitter=5ms
  loss=P            drop each datagram with probability P (0.05 or 5%)
  ge=P:R[:L]        Gilbert-Elliott bursts: enter the bad state with P, leave with R,
                    drop with L (default 1) while bad
  drop-every=N      drop every Nth datagram
  drop-flags=F:N    drop the first N segments carrying flag F (FIN, SYN, RST, ACK);
                    join several with +, e.g. SYN:1+FIN:2
  drop-fin-ack=N    drop the first N pure ACKs of the other direction's FIN
  delay=T           one-way delay; T needs a unit: us, ms or s
  jitter=T          plus a uniform random extra delay in [0, T] (reorders)
  reorder=P         hold a datagram back by reorder-delay (default 2ms) with probability P
  reorder-delay=T   how long reorder holds a datagram back (default 2ms); T needs a unit
  duplicate=P       deliver a second copy with probability P
  corrupt=P         flip one bit with probability P
  rate=R            bottleneck rate: bit, kbit, mbit or gbit (per second, 1000-based)
  queue=S           bottleneck queue (needs rate): b, kb, mb (1000-based), kib, mib (1024-based);
                    without it the queue is unlimited
  mtu=S             drop datagrams larger than S octets of UDP payload (a smaller-MTU hop)
  none              no impairment
"""

MAX_DURATION_S = 3600.0
MAX_RATE_BPS = 1e12
MAX_QUEUE_BYTES = 1 << 30

_NUMBER_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?", re.IGNORECASE)
_COUNT_RE = re.compile(r"\d+")

_PER_SECOND = {"us": Decimal(10**6), "µs": Decimal(10**6), "ms": Decimal(1000), "s": Decimal(1)}
_BITS_PER_SECOND = {"bit": Decimal(1), "kbit": Decimal(10**3), "mbit": Decimal(10**6), "gbit": Decimal(10**9)}
_OCTETS = {"b": 1, "kb": 1000, "mb": 1000**2, "kib": 1024, "mib": 1024**2}

_PROBABILITY_ACCEPTS = "a fraction in [0, 1] (0.05) or a percentage (5%)"
_DURATION_ACCEPTS = (
    "a number with a unit, us, ms or s (10ms), at most 1h; a bare number is refused because "
    "it is ambiguous between seconds and milliseconds"
)
_RATE_ACCEPTS = "a number with a unit, bit, kbit, mbit or gbit per second, 1000-based (50mbit)"
_SIZE_ACCEPTS = "a whole number of octets with a unit: b, kb, mb (1000-based), kib, mib (1024-based) (64kb)"
_COUNT_ACCEPTS = "a whole number >= 0"
_GE_ACCEPTS = f"P:R or P:R:LOSS, each {_PROBABILITY_ACCEPTS} (0.01:0.3:1)"
_FLAGS_ACCEPTS = f"FLAG:N joined by '+', FLAG one of {', '.join(FLAG_NAMES)} (FIN:2 or SYN:1+FIN:2)"


def _bad(key: str, text: str, problem: str, accepts: str) -> ValueError:
    return ValueError(f"{key}={text!r}: {problem}; accepted: {accepts}")


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _number_and_unit(key: str, text: str, accepts: str) -> tuple[Decimal, str]:
    if text.startswith("-"):
        raise _bad(key, text, "must not be negative", accepts)
    match = _NUMBER_RE.match(text)
    if match is None:
        raise _bad(key, text, "not a number", accepts)
    return Decimal(match.group()), text[match.end():].strip().lower()


def _unit_factor(key: str, text: str, unit: str, units: dict[str, Any], accepts: str) -> Any:
    if not unit:
        raise _bad(key, text, "missing unit", accepts)
    if unit not in units:
        if unit.endswith("bps"):
            problem = f"unit {unit!r} is ambiguous (tc reads mbps as megabytes per second)"
            raise _bad(key, text, f"{problem} (did you mean {unit[:-3] + 'bit'!r}?)", accepts)
        raise _bad(key, text, f"unknown unit {unit!r}{_suggest(unit, list(units))}", accepts)
    return units[unit]


def _parse_probability(key: str, text: str) -> float:
    number, unit = _number_and_unit(key, text, _PROBABILITY_ACCEPTS)
    if unit not in ("", "%"):
        raise _bad(key, text, f"unknown unit {unit!r}", _PROBABILITY_ACCEPTS)
    value = number / 100 if unit == "%" else number
    if value > 1:
        hint = "" if unit else f" (did you mean {text}%?)"
        raise _bad(key, text, f"more than certain{hint}", _PROBABILITY_ACCEPTS)
    return float(value)


def _parse_duration(key: str, text: str) -> float:
    number, unit = _number_and_unit(key, text, _DURATION_ACCEPTS)
    seconds = float(number / _unit_factor(key, text, unit, _PER_SECOND, _DURATION_ACCEPTS))
    if seconds > MAX_DURATION_S:
        raise _bad(key, text, "too long", _DURATION_ACCEPTS)
    return seconds


def _parse_rate(key: str, text: str) -> float:
    number, unit = _number_and_unit(key, text, _RATE_ACCEPTS)
    bps = float(number * _unit_factor(key, text, unit, _BITS_PER_SECOND, _RATE_ACCEPTS))
    if bps > MAX_RATE_BPS:
        raise _bad(key, text, "faster than 1000gbit", _RATE_ACCEPTS)
    return bps


def _parse_size(key: str, text: str) -> int:
    number, unit = _number_and_unit(key, text, _SIZE_ACCEPTS)
    octets = number * _unit_factor(key, text, unit, _OCTETS, _SIZE_ACCEPTS)
    if octets != octets.to_integral_value():
        raise _bad(key, text, "not a whole number of octets", _SIZE_ACCEPTS)
    if octets > MAX_QUEUE_BYTES:
        raise _bad(key, text, "larger than 1024mib", _SIZE_ACCEPTS)
    return int(octets)


def _parse_count(key: str, text: str) -> int:
    if not _COUNT_RE.fullmatch(text):
        raise _bad(key, text, "not a whole number", _COUNT_ACCEPTS)
    return int(text)


def _parse_ge(key: str, text: str) -> dict[str, Any]:
    parts = [part.strip() for part in text.split(":")]
    if len(parts) not in (2, 3):
        raise _bad(key, text, f"{len(parts)} field{'s' * (len(parts) > 1)} instead of 2 or 3", _GE_ACCEPTS)
    values: dict[str, Any] = {}
    for name, part in zip(("ge_p", "ge_r", "ge_loss"), parts, strict=False):
        try:
            values[name] = _parse_probability(key, part)
        except ValueError:
            raise _bad(key, text, f"{part!r} is not a probability", _GE_ACCEPTS) from None
    return values


def _parse_flags(key: str, text: str) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for part in text.split("+"):
        name, _, count = part.strip().partition(":")
        name = name.strip().upper()
        if name not in FLAG_NAMES:
            raise _bad(key, text, f"unknown flag {name!r}{_suggest(name, list(FLAG_NAMES))}", _FLAGS_ACCEPTS)
        if name in counts:
            raise _bad(key, text, f"flag {name} given twice", _FLAGS_ACCEPTS)
        count = count.strip() or "1"
        if not _COUNT_RE.fullmatch(count):
            raise _bad(key, text, f"count {count!r} of {name} is not a whole number", _FLAGS_ACCEPTS)
        counts[name] = int(count)
    return {"drop_flags": counts}


def _format_probability(value: float) -> str:
    return repr(float(value))


def _plain(number: Decimal) -> str:
    """Decimal notation without an exponent, so that the spec parser reads it back."""
    return format(number.normalize(), "f")


def _format_duration(seconds: float) -> str:
    # Decimal(repr(x)) is the shortest decimal that reads back as x; scaling it by a power of
    # ten is exact, so the parser's division by the same power gives x back bit for bit.
    exact = Decimal(repr(abs(seconds)))
    unit = "s" if seconds >= 1 else "ms" if seconds >= 1e-3 else "us"
    return _plain(exact * _PER_SECOND[unit]) + unit


def _format_rate(bps: float) -> str:
    exact = Decimal(repr(bps))
    unit = next((u for u in ("gbit", "mbit", "kbit") if exact >= _BITS_PER_SECOND[u]), "bit")
    return _plain(exact / _BITS_PER_SECOND[unit]) + unit


def _format_size(octets: int) -> str:
    for unit in ("mb", "mib", "kb", "kib"):
        if octets and octets % _OCTETS[unit] == 0:
            return f"{octets // _OCTETS[unit]}{unit}"
    return f"{octets}b"


class _Scalar(NamedTuple):
    field: str
    parse: Callable[[str, str], Any]
    format: Callable[[Any], str]


_PROBABILITY = (_parse_probability, _format_probability)
_SCALARS: dict[str, _Scalar] = {
    "loss": _Scalar("loss", *_PROBABILITY),
    "drop-every": _Scalar("drop_every", _parse_count, str),
    "drop-fin-ack": _Scalar("drop_fin_ack", _parse_count, str),
    "delay": _Scalar("delay_s", _parse_duration, _format_duration),
    "jitter": _Scalar("jitter_s", _parse_duration, _format_duration),
    "reorder": _Scalar("reorder", *_PROBABILITY),
    "reorder-delay": _Scalar("reorder_delay_s", _parse_duration, _format_duration),
    "duplicate": _Scalar("duplicate", *_PROBABILITY),
    "corrupt": _Scalar("corrupt", *_PROBABILITY),
    "rate": _Scalar("rate_bps", _parse_rate, _format_rate),
    "queue": _Scalar("queue_bytes", _parse_size, _format_size),
    "mtu": _Scalar("mtu_bytes", _parse_size, _format_size),
}
_COMPOUNDS: dict[str, Callable[[str, str], dict[str, Any]]] = {"ge": _parse_ge, "drop-flags": _parse_flags}

KEYS = (
    "loss", "ge", "drop-every", "drop-flags", "drop-fin-ack", "delay", "jitter",
    "reorder", "reorder-delay", "duplicate", "corrupt", "rate", "queue", "mtu",
)
"""Every key a spec may contain, in the order :func:`format_spec` writes them."""


def parse_items(spec: str) -> SpecItems:
    """The keys one spec sets, checked one by one but not yet combined.

    Kept apart from :func:`impairment_from` so that ``--both`` and ``--up`` can be checked (and
    blamed in error messages) separately and then merged key by key.
    """
    items: SpecItems = {}
    raw: dict[str, str] = {}
    if spec.strip().lower() == "none":
        return items
    for item in spec.split(","):
        if not item.strip():
            continue
        name, sep, text = item.partition("=")
        key, text = name.strip().lower().replace("_", "-"), text.strip()
        if not sep:
            raise ValueError(f"{item.strip()!r} is not key=value (e.g. loss=5%); keys: {', '.join(KEYS)}")
        if key not in KEYS:
            raise ValueError(
                f"unknown key {key!r} in {item.strip()!r}{_suggest(key, list(KEYS))}; "
                f"accepted keys: {', '.join(KEYS)}"
            )
        if key in raw:
            raise ValueError(f"{key} is given twice ({raw[key]!r} and {text!r}); give each key once")
        raw[key] = text
        if key in _SCALARS:
            scalar = _SCALARS[key]
            items[key] = {scalar.field: scalar.parse(key, text)}
        else:
            items[key] = _COMPOUNDS[key](key, text)
    return items


def impairment_from(*items: SpecItems) -> Impairment:
    """One :class:`Impairment` from parsed specs; a key in a later spec overrides an earlier one."""
    merged: SpecItems = {}
    for one in items:
        merged.update(one)
    values = {name: value for fields in merged.values() for name, value in fields.items()}
    if values.get("queue_bytes") and not values.get("rate_bps"):
        queue = _format_size(values["queue_bytes"])
        raise ValueError(
            f"queue={queue!r}: a queue only fills behind a rate limit; "
            "accepted: queue together with rate (rate=10mbit,queue=64kb)"
        )
    return Impairment(**values)


def parse_spec(*specs: str) -> Impairment:
    """Parse spec strings into one :class:`Impairment`; later specs override earlier keys.

    Raises ValueError naming the offending key, its value and what would have been accepted.
    """
    return impairment_from(*(parse_items(spec) for spec in specs))


def format_spec(impairment: Impairment) -> str:
    """The spec that :func:`parse_spec` turns back into ``impairment`` ("none" for no impairment)."""
    default = Impairment()
    parts: list[str] = []
    for key in KEYS:
        if key == "ge":
            ge = (impairment.ge_p, impairment.ge_r, impairment.ge_loss)
            if ge != (default.ge_p, default.ge_r, default.ge_loss):
                parts.append("ge=" + ":".join(_format_probability(p) for p in ge))
        elif key == "drop-flags":
            if impairment.drop_flags:
                flags = "+".join(f"{name}:{count}" for name, count in impairment.drop_flags.items())
                parts.append(f"drop-flags={flags}")
        else:
            scalar = _SCALARS[key]
            value = getattr(impairment, scalar.field)
            if value != getattr(default, scalar.field):
                parts.append(f"{key}={scalar.format(value)}")
    return ",".join(parts) or "none"
