-- One vendor account's rate limiter, shared by every worker on every machine.
--
-- GCRA (generic cell rate algorithm) with an adaptive rate, all in one script so that every
-- decision is atomic, and timed by the Redis server's clock so that client clocks never matter.
--
-- KEYS[1]  state hash:  tat             theoretical arrival time of the next request, in µs
--                       rate            the current (adaptive) rate in requests/s, <= ceiling
--                       penalised_until end of the pause imposed by the last rate_limited answer, µs
-- ARGV[1]  op: "acquire" | "penalise" | "reward" | "rate"
-- ARGV[2]  ceiling: configured rate, requests/s
-- ARGV[3]  burst: requests allowed back to back on top of the spacing (0 = none)
-- ARGV[4]  margin: fraction of the rate kept unused, so late-woken workers never squeeze
--          rate+1 requests into a vendor's one-second window
-- ARGV[5]  floor: lowest rate a penalty may bring, requests/s
-- ARGV[6]  factor: multiplicative decrease of a penalty (0.5 = halve)
-- ARGV[7]  pause_us: how long nobody sends after a penalty
-- ARGV[8]  recovery_s: seconds of steady success to climb from 0 to the ceiling (additive increase)
-- ARGV[9]  ttl_ms: the state expires after this long idle (then starts again at the ceiling)
-- ARGV[10] max_wait_us (acquire, acquire_many): reserve a slot only if it comes within this;
--          count (reward): how many successes to count (default 1)
-- ARGV[11] n (acquire_many): reserve up to this many slots, each within max_wait_us
--
-- acquire returns {granted (1/0), wait_us}: when granted the slot is reserved and the caller
-- sleeps wait_us before sending; when not, nothing changed and wait_us is the earliest slot.
-- acquire_many returns {count, wait_us...}: the count of slots reserved and each one's wait; with
-- count 0 nothing changed and the one wait_us that follows is the earliest slot.
-- The other ops return the current rate as a string (Lua numbers would be truncated to integers).

local key = KEYS[1]
local op = ARGV[1]
local ceiling = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local margin = tonumber(ARGV[4])
local floor = tonumber(ARGV[5])
local factor = tonumber(ARGV[6])
local pause_us = tonumber(ARGV[7])
local recovery_s = tonumber(ARGV[8])
local ttl_ms = tonumber(ARGV[9])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local state = redis.call('HMGET', key, 'tat', 'rate', 'penalised_until')
local tat = tonumber(state[1]) or now
local rate = tonumber(state[2]) or ceiling
local penalised_until = tonumber(state[3]) or 0
-- A lowered configuration takes effect at once.
if rate > ceiling then rate = ceiling end
if floor > ceiling then floor = ceiling end

local function spacing(r)
  return 1000000 / (r * (1 - margin))
end

local function save()
  -- %.0f: tostring() keeps 14 digits only, and epoch microseconds have 16.
  redis.call('HSET', key, 'tat', string.format('%.0f', tat), 'rate', string.format('%.6f', rate),
    'penalised_until', string.format('%.0f', penalised_until))
  redis.call('PEXPIRE', key, ttl_ms)
end

if op == 'acquire' then
  local max_wait = tonumber(ARGV[10])
  local interval = spacing(rate)
  local tolerance = burst * interval
  -- Unused time is not banked beyond the burst: an idle account starts from now.
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait < 0 then wait = 0 end
  if wait > max_wait then
    return {0, math.ceil(wait)}
  end
  tat = tat + interval
  save()
  return {1, math.ceil(wait)}
elseif op == 'acquire_many' then
  local max_wait = tonumber(ARGV[10])
  local n = tonumber(ARGV[11])
  local interval = spacing(rate)
  local tolerance = burst * interval
  if tat < now then tat = now end
  local waits = {}
  while #waits < n do
    local wait = tat - tolerance - now
    if wait < 0 then wait = 0 end
    if wait > max_wait then
      if #waits == 0 then return {0, math.ceil(wait)} end
      break
    end
    waits[#waits + 1] = math.ceil(wait)
    tat = tat + interval
  end
  save()
  table.insert(waits, 1, #waits)
  return waits
elseif op == 'penalise' then
  -- Answers to requests already in flight arrive together: one overload halves the rate once.
  if now >= penalised_until then
    rate = math.max(floor, rate * factor)
    penalised_until = now + pause_us
    -- Nobody sends during the pause, and the burst allowance is spent: after the pause the
    -- requests are spaced at the new rate straight away.
    local resume = now + pause_us + burst * spacing(rate)
    if tat < resume then tat = resume end
    save()
  end
  return string.format('%.6f', rate)
elseif op == 'reward' then
  -- Successes of requests sent before the penalty do not undo it.
  if now >= penalised_until and rate < ceiling then
    -- About `rate` successes arrive per second, so each adds ceiling / (rate * recovery_s):
    -- the rate climbs linearly in time, whatever its level.
    local count = tonumber(ARGV[10]) or 1
    for _ = 1, count do
      rate = math.min(ceiling, rate + ceiling / (rate * recovery_s))
    end
    save()
  end
  return string.format('%.6f', rate)
elseif op == 'rate' then
  return string.format('%.6f', rate)
end
return redis.error_reply('unknown op ' .. tostring(op))
