-- One vendor account's requests in flight (sent, not yet answered), shared by every worker on every
-- machine: at most `max` leases at once. A lease is held from before a request's claim until its
-- answer, and expires by itself after `lease_ms`, so a worker that dies holding one blocks the account
-- for that long at most. Timed by the Redis server's clock.
--
-- KEYS[1]  sorted set: member = a lease token, score = when it expires (ms)
-- ARGV[1]  op: "acquire" | "release"
-- ARGV[2]  max: leases at once
-- ARGV[3]  lease_ms
-- ARGV[4...] the tokens to acquire (as many as are free, in order) or to release
--
-- acquire returns the tokens granted; with none free, {} and nothing changed.
-- release returns the number of leases released (a lease already expired is not there).

local key = KEYS[1]
local op = ARGV[1]
local max = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if op == 'acquire' then
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now))
  local free = max - redis.call('ZCARD', key)
  local granted = {}
  for i = 4, #ARGV do
    if #granted >= free then break end
    redis.call('ZADD', key, string.format('%.0f', now + lease_ms), ARGV[i])
    granted[#granted + 1] = ARGV[i]
  end
  if #granted > 0 then
    -- The set outlives its longest lease by a second: an idle account leaves nothing behind.
    redis.call('PEXPIRE', key, lease_ms + 1000)
  end
  return granted
elseif op == 'release' then
  local released = 0
  for i = 4, #ARGV do
    released = released + redis.call('ZREM', key, ARGV[i])
  end
  return released
end
return redis.error_reply('unknown op ' .. tostring(op))
