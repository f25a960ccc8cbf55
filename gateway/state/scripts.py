"""The Lua scripts of ``RedisState``: each decision one atomic ``EVALSHA``.

Redis runs a script alone (no other command interleaves), so "check every limit, then
charge all or nothing" is atomic across every worker and replica. Clocks: token buckets
and lease expiries use Redis's ``TIME`` inside the script, so all replicas share one
clock; budget windows and key rests come from the caller's wall clock (they are UTC
days and ``time.time()`` instants, see gateway/state/rules.py). The arithmetic is that of
rules.py, written again in Lua; tests/state/test_semantics.py holds both to it.

Conventions: a limit that is not set is passed as ``-1``. Floats are stored and returned
as ``%.6f`` strings (a Lua number returned to Redis is truncated to an integer, and one
passed to ``redis.call`` is printed with 14 digits, which would cut a timestamp to 0.1 ms).
A token bucket is a hash ``{tokens, ts}`` that expires when it would be full again (a
missing bucket is a full one). A concurrency or provider-slot key is a sorted set of
leases scored by their expiry. Keys are built by ``RedisState`` (prefix, encoded names).

Needs Redis 5 or later (scripts replicated by their effects, so ``TIME`` is allowed
before writes); tested on 7.
"""

from __future__ import annotations

from gateway.redis import Script

__all__ = ["ACQUIRE", "ADMIT", "RENEW", "REST", "SETTLE"]

_COMMON = """
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function fmt(x) return string.format('%.6f', x) end
local function level(key, cap, at)
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(v[1]), tonumber(v[2])
  if tokens == nil or ts == nil then return cap end
  local l = tokens + math.max(0, at - ts) * cap / 60
  if l > cap then return cap end
  return l
end
local function store(key, l, cap, at)
  redis.call('HSET', key, 'tokens', fmt(l), 'ts', fmt(at))
  redis.call('PEXPIRE', key, math.ceil((cap - l) * 60000 / cap) + 1000)
end
-- A window's hash gets its TTL when it is created: a field that now holds exactly what
-- was added is new, and every write that can create the hash goes through here.
local function add(key, field, n, ttl)
  if redis.call('HINCRBY', key, field, n) == n then redis.call('EXPIRE', key, ttl) end
end
local function hold(key, lease, at, lease_s)
  redis.call('ZADD', key, fmt(at + lease_s), lease)
  redis.call('PEXPIRE', key, math.ceil(lease_s * 1000) + 60000)
end
"""

#: KEYS: rpm bucket, tpm bucket, concurrency leases, day window, month window.
#: ARGV: rpm, tpm, concurrency, per day, per month (-1: none), tokens, lease, lease_s,
#: day left s, month left s, day ttl, month ttl.
#: Returns {1 admitted | 0 refused, limit, wait ms (-1: never), rpm level, tpm level}.
ADMIT = Script(
    _COMMON
    + """
local at = now()
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local per_day, per_month = tonumber(ARGV[4]), tonumber(ARGV[5])
local tokens, lease, lease_s = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local cost = math.max(tokens, 1)
local worst, worst_wait = '', 0
local function refuse(name, wait)
  if worst_wait == -1 then return end
  if wait == -1 or wait > worst_wait then worst, worst_wait = name, wait end
end
if conc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', fmt(at))
  if conc == 0 then refuse('concurrency', -1)
  elseif redis.call('ZCARD', KEYS[3]) >= conc then refuse('concurrency', 1) end
end
local rpm_level, tpm_level = 0, 0
if rpm >= 0 then
  rpm_level = level(KEYS[1], rpm, at)
  if rpm == 0 then refuse('rpm', -1)
  elseif rpm_level < 1 then refuse('rpm', (1 - rpm_level) * 60 / rpm) end
end
if tpm >= 0 then
  tpm_level = level(KEYS[2], tpm, at)
  if tpm == 0 or tokens > tpm then refuse('tpm', -1)
  elseif tpm_level < cost then refuse('tpm', (cost - tpm_level) * 60 / tpm) end
end
local function budget(key, limit, left, name)
  if limit < 0 then return end
  local used = tonumber(redis.call('HGET', key, 'charged')) or 0
  if limit == 0 or tokens > limit then refuse(name, -1)
  elseif used + cost > limit then refuse(name, math.max(left, 1)) end
end
budget(KEYS[4], per_day, tonumber(ARGV[9]), 'tokens_per_day')
budget(KEYS[5], per_month, tonumber(ARGV[10]), 'tokens_per_month')
if worst ~= '' then
  local ms = -1
  if worst_wait ~= -1 then ms = math.ceil(worst_wait * 1000) end
  return {0, worst, ms, fmt(rpm_level), fmt(tpm_level)}
end
if rpm >= 0 then rpm_level = rpm_level - 1; store(KEYS[1], rpm_level, rpm, at) end
if tpm >= 0 then tpm_level = tpm_level - tokens; store(KEYS[2], tpm_level, tpm, at) end
if conc >= 0 then hold(KEYS[3], lease, at, lease_s) end
if tokens ~= 0 then
  add(KEYS[4], 'charged', tokens, ARGV[11])
  add(KEYS[5], 'charged', tokens, ARGV[12])
end
return {1, '', 0, fmt(rpm_level), fmt(tpm_level)}
"""
)

#: KEYS: tpm bucket, concurrency leases, the ticket's day and month windows, today's
#: day and month windows (the ledger counts when the request ends).
#: ARGV: tpm (-1: none), charge correction, lease ('' none), count (1: ledger, 0: an
#: admission taken back), tokens in, out, cached, reasoning, day ttl, month ttl.
SETTLE = Script(
    _COMMON
    + """
local tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
if delta ~= 0 then
  if tpm > 0 then
    local at = now()
    local l = level(KEYS[1], tpm, at) - delta
    if l > tpm then l = tpm end
    store(KEYS[1], l, tpm, at)
  end
  add(KEYS[3], 'charged', delta, ARGV[9])
  add(KEYS[4], 'charged', delta, ARGV[10])
end
if ARGV[4] == '1' then
  local fields = {'tokens_in', 'tokens_out', 'cached', 'reasoning'}
  for i, key in ipairs({KEYS[5], KEYS[6]}) do
    add(key, 'requests', 1, ARGV[8 + i])
    for f = 1, 4 do
      local n = tonumber(ARGV[4 + f])
      if n ~= 0 then redis.call('HINCRBY', key, fields[f], n) end
    end
  end
end
return 1
"""
)

#: KEYS: the provider's slot leases. ARGV: limit, lease, lease_s. Returns 1 (held) or 0.
ACQUIRE = Script(
    _COMMON
    + """
local at = now()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', fmt(at))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
hold(KEYS[1], ARGV[2], at, tonumber(ARGV[3]))
return 1
"""
)

#: KEYS: lease sets. ARGV: lease_s, then per key: how many leases, the leases.
#: Pushes the expiry of leases still there (ZADD XX: a released one stays released).
RENEW = Script(
    _COMMON
    + """
local lease_s = tonumber(ARGV[1])
local score = fmt(now() + lease_s)
local i = 2
for k = 1, #KEYS do
  local n = tonumber(ARGV[i])
  i = i + 1
  for j = 1, n do
    redis.call('ZADD', KEYS[k], 'XX', score, ARGV[i])
    i = i + 1
  end
  redis.call('PEXPIRE', KEYS[k], math.ceil(lease_s * 1000) + 60000)
end
return 1
"""
)

#: KEYS: the rests hash. ARGV: field (provider/key id), until, strikes, wall-clock now.
#: The longer rest wins; rests that are over are dropped; the hash lives as long as its
#: longest rest (and a minute).
REST = Script(
    """
local field, untl, at = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local current = redis.call('HGET', KEYS[1], field)
if current then
  local u = tonumber(string.match(current, '^(%S+)'))
  if u and u >= untl then return 0 end
end
redis.call('HSET', KEYS[1], field, ARGV[2] .. ' ' .. ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local last = untl
for j = 1, #all, 2 do
  local u = tonumber(string.match(all[j + 1], '^(%S+)')) or 0
  if u <= at then redis.call('HDEL', KEYS[1], all[j]) elseif u > last then last = u end
end
redis.call('EXPIRE', KEYS[1], math.max(1, math.ceil(last - at)) + 60)
return 1
"""
)
