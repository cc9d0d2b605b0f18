"""Sign-in throttling in Redis, per user name and per client address (HTML sign-in and HTTP Basic alike).

Each subject (the name tried, the client's address) may make :data:`TRIES` attempts per
:data:`WINDOW_S`; one more blocks it for :data:`BLOCK_S`, doubling with each block of the last day up
to :data:`MAX_BLOCK_S`. An attempt is counted *before* the password is checked, in one Lua script, so
parallel requests cannot slip through and a blocked one costs no scrypt. A success clears the name's
count and gives the address its try back (an office behind one address signs in all day).

The address is the socket peer, unless ``dispatcher web --forwarded-allow-ips`` names a proxy
whose ``X-Forwarded-For`` uvicorn may believe. An IPv6 address counts as its /64: one subscriber holds
a whole /64 and could otherwise bring a fresh address to every try.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from redis import Redis

from dispatcher.keys import KeySpace

TRIES = 5
WINDOW_S = 60
BLOCK_S = 60
MAX_BLOCK_S = 3600
STRIKES_S = 24 * 3600  # blocks are remembered this long for the doubling

# KEYS: (tries, strikes, block) per subject. ARGV: tries, window ms, block ms, max block ms, strikes s.
# Returns {wait ms, 1 if this call started a block}.
_ATTEMPT = """
local wait = 0
for i = 1, #KEYS, 3 do
  local ttl = redis.call('PTTL', KEYS[i + 2])
  if ttl > wait then wait = ttl end
end
if wait > 0 then return {wait, 0} end
local started = 0
for i = 1, #KEYS, 3 do
  local tries = redis.call('INCR', KEYS[i])
  if tries == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
  if tries > tonumber(ARGV[1]) then
    local strikes = redis.call('INCR', KEYS[i + 1])
    redis.call('EXPIRE', KEYS[i + 1], ARGV[5])
    local block = math.min(tonumber(ARGV[3]) * 2 ^ (strikes - 1), tonumber(ARGV[4]))
    redis.call('SET', KEYS[i + 2], strikes, 'PX', math.floor(block))
    redis.call('DEL', KEYS[i])
    if block > wait then wait = block end
    started = 1
  end
end
return {math.floor(wait), started}
"""

# KEYS: the name's tries and strikes, the address's tries.
_SUCCEEDED = """
redis.call('DEL', KEYS[1], KEYS[2])
if tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then redis.call('DECR', KEYS[3]) end
"""


@dataclass(frozen=True)
class Verdict:
    wait_s: int  # 0: go ahead and check the password; otherwise refuse, try again in this many seconds
    blocked_now: bool  # this attempt started the block (audit it once, not every refused try)


def network(address: str) -> str:
    """The unit an address is counted in: itself for IPv4, its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _subject(kind: str, value: str) -> str:
    # Hashed: a name or header of any length and character becomes a short, safe key part.
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


class SignInThrottle:
    def __init__(self, redis: Redis[Any], keys: KeySpace) -> None:
        self.redis = redis
        self.keys = keys
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)

    def _keys(self, subject: str) -> list[str]:
        return [self.keys.login_key(kind, subject) for kind in ("tries", "strikes", "block")]

    def attempt(self, name: str, address: str) -> Verdict:
        """Count one sign-in attempt by ``name`` from ``address``. Raises ``RedisError``."""
        keys = self._keys(_subject("name", name)) + self._keys(_subject("addr", network(address)))
        args = [TRIES, WINDOW_S * 1000, BLOCK_S * 1000, MAX_BLOCK_S * 1000, STRIKES_S]
        wait_ms, started = self._attempt(keys=keys, args=args)
        return Verdict(wait_s=(int(wait_ms) + 999) // 1000, blocked_now=bool(started))

    def succeeded(self, name: str, address: str) -> None:
        tries, strikes, _ = self._keys(_subject("name", name))
        self._succeeded(keys=[tries, strikes, self._keys(_subject("addr", network(address)))[0]])
