"""Where a keyed record lands: Kafka's murmur2 partitioner (`PARTITIONER`), in pure Python.

Producers do not need it (they set `{"partitioner": PARTITIONER}`); a reader that wants
one key's records does: every topic keyed by agent_id puts an agent on the same
partition number, so an agent's client reads one partition per topic, not all of them.
This is the algorithm of Kafka's Java client (`Utils.murmur2` and `toPositive`), which
aiokafka and librdkafka's `murmur2_random` share; other languages port these lines.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of the key bytes (unsigned)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length % 4
    if extra == 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a non-null key goes to among `partitions`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
