"""The Lua scripts of ``RedisState``: each decision one atomic ``EVALSHA``.

Redis runs a script alone (no other command interleaves), so "check every limit, then
charge all or nothing" is atomic across every worker and replica. Clocks: token buckets
and lease expiries use Redis's ``TIME`` inside the script, so all replicas share one
clock; budget windows and key rests come from the caller's wall clock (they are UTC
days and ``time.time()`` instants, see gateway/state/rules.py). The arithmetic is that of
rules.py, written again in Lua; tests/state/test_semantics.py holds both to it.

What is stored, per client key (names built by ``RedisState``: prefix, encoded names):

- ``bucket:<key>``, a hash ``{rpm, tpm, ts}``: both token buckets' levels at ``ts``. It
  expires when both would be full again (a missing bucket is a full one).
- ``conc:<key>``, a sorted set of leases scored by their expiry; counted with ``ZCOUNT``
  from now on, so expired leases never count; the renewal script sweeps them.
- ``use:<key>:<window>``, a hash ``{requests, tokens_in, tokens_out, cached, reasoning,
  pending}`` per UTC day and month: the ledger, and the estimates of requests admitted
  and not yet settled (``pending``). A budget's use is ``tokens_in + tokens_out +
  pending``, so a budget configured in mid-window counts what the window already used.
  The hash gets its TTL (the rest of the window and an hour) when it is created.

Cost: a script's time in Redis goes more to Lua itself (number and string conversions,
tables) than to the commands it calls (measured with ``INFO commandstats``: 35-70 µs per
admit+settle pair, 5-16 µs of it in commands). So counters are ``HINCRBY`` (Redis does
the arithmetic), both buckets share one hash (one ``HMGET``, one ``HSET``), and nothing
is converted that the decision does not need.

Conventions: a limit that is not set is passed as ``-1``. Floats are stored and returned
as ``%.6f`` strings (a Lua number returned to Redis is truncated to an integer, and one
passed to ``redis.call`` is printed with 14 digits, which would cut a timestamp to 0.1 ms).
Needs Redis 5 or later (scripts replicated by their effects, so ``TIME`` is allowed before
writes); tested on 7.
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
local function refill(tokens, ts, cap, at)
  if cap < 0 then return 0 end
  tokens = tonumber(tokens)
  if tokens == nil or ts == nil then return cap end
  local l = tokens + math.max(0, at - ts) * cap / 60
  if l > cap then return cap end
  return l
end
-- Both buckets' levels at ``at`` (0 for a limit that is not set).
local function buckets(key, rpm, tpm, at)
  local v = redis.call('HMGET', key, 'rpm', 'tpm', 'ts')
  local ts = tonumber(v[3])
  return refill(v[1], ts, rpm, at), refill(v[2], ts, tpm, at)
end
-- Write the levels of the buckets that are set; the hash expires when both are full.
local function store(key, rpm, r, tpm, t, at)
  local fields, full_ms = {'ts', fmt(at)}, 1000
  if rpm > 0 then
    fields[#fields + 1] = 'rpm'
    fields[#fields + 1] = fmt(r)
    full_ms = math.max(full_ms, math.ceil((rpm - r) * 60000 / rpm) + 1000)
  end
  if tpm > 0 then
    fields[#fields + 1] = 'tpm'
    fields[#fields + 1] = fmt(t)
    full_ms = math.max(full_ms, math.ceil((tpm - t) * 60000 / tpm) + 1000)
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, full_ms)
end
-- A window's hash gets its TTL when it is created: a field that now holds exactly what
-- was added is new, and every write that can create the hash goes through here.
local function add(key, field, n, ttl)
  local now_n = redis.call('HINCRBY', key, field, n)
  if now_n == n then redis.call('EXPIRE', key, ttl) end
  return now_n
end
local function hold(key, lease, at, lease_s)
  redis.call('ZADD', key, fmt(at + lease_s), lease)
  redis.call('PEXPIRE', key, math.ceil(lease_s * 1000) + 60000)
end
"""

#: KEYS: bucket, concurrency leases, day window, month window.
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
if conc == 0 then refuse('concurrency', -1)
elseif conc > 0 and redis.call('ZCOUNT', KEYS[2], '(' .. fmt(at), '+inf') >= conc then
  refuse('concurrency', 1)
end
local r, t = 0, 0
if rpm >= 0 or tpm >= 0 then r, t = buckets(KEYS[1], rpm, tpm, at) end
if rpm == 0 then refuse('rpm', -1)
elseif rpm > 0 and r < 1 then refuse('rpm', (1 - r) * 60 / rpm) end
if tpm == 0 or (tpm > 0 and tokens > tpm) then refuse('tpm', -1)
elseif tpm > 0 and t < cost then refuse('tpm', (cost - t) * 60 / tpm) end
local function budget(key, limit, left, name)
  if limit < 0 then return end
  local v = redis.call('HMGET', key, 'tokens_in', 'tokens_out', 'pending')
  local spent = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0) + (tonumber(v[3]) or 0)
  if limit == 0 or tokens > limit then refuse(name, -1)
  elseif spent + cost > limit then refuse(name, math.max(left, 1)) end
end
budget(KEYS[3], per_day, tonumber(ARGV[9]), 'tokens_per_day')
budget(KEYS[4], per_month, tonumber(ARGV[10]), 'tokens_per_month')
if worst ~= '' then
  local ms = -1
  if worst_wait ~= -1 then ms = math.ceil(worst_wait * 1000) end
  return {0, worst, ms, fmt(r), fmt(t)}
end
if rpm >= 0 then r = r - 1 end
if tpm >= 0 then t = t - tokens end
if rpm >= 0 or tpm >= 0 then store(KEYS[1], rpm, r, tpm, t, at) end
if conc >= 0 then hold(KEYS[2], lease, at, lease_s) end
if tokens ~= 0 then
  if per_day >= 0 then add(KEYS[3], 'pending', tokens, ARGV[11]) end
  if per_month >= 0 then add(KEYS[4], 'pending', tokens, ARGV[12]) end
end
return {1, '', 0, fmt(r), fmt(t)}
"""
)

#: KEYS: bucket, concurrency leases, the ticket's day and month windows, today's day and
#: month windows (the ledger counts when the request ends).
#: ARGV: rpm, tpm (-1: none), tpm correction, lease ('' none), count (1: the ledger, 0: an
#: admission taken back), tokens in, out, cached, reasoning, pending to take off the
#: ticket's day and month windows, day ttl, month ttl.
SETTLE = Script(
    _COMMON
    + """
local rpm, tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[2], ARGV[4]) end
if tpm > 0 and delta ~= 0 then
  local at = now()
  local r, t = buckets(KEYS[1], rpm, tpm, at)
  t = math.min(tpm, t - delta)
  store(KEYS[1], rpm, r, tpm, t, at)
end
-- The estimate leaves the ticket's windows (never below 0: a window lost to a restart).
local function unpend(key, n, ttl)
  if n == 0 then return end
  local left = redis.call('HINCRBY', key, 'pending', -n)
  if left < 0 then
    redis.call('HSET', key, 'pending', 0)
    if left == -n then redis.call('EXPIRE', key, ttl) end
  end
end
unpend(KEYS[3], tonumber(ARGV[10]), ARGV[12])
unpend(KEYS[4], tonumber(ARGV[11]), ARGV[13])
if ARGV[5] == '1' then
  local fields = {'tokens_in', 'tokens_out', 'cached', 'reasoning'}
  for i, key in ipairs({KEYS[5], KEYS[6]}) do
    add(key, 'requests', 1, ARGV[11 + i])
    for f = 1, 4 do
      local n = tonumber(ARGV[5 + f])
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
if redis.call('ZCOUNT', KEYS[1], '(' .. fmt(at), '+inf') >= tonumber(ARGV[1]) then return 0 end
hold(KEYS[1], ARGV[2], at, tonumber(ARGV[3]))
return 1
"""
)

#: KEYS: lease sets. ARGV: lease_s, then per key: how many leases, the leases.
#: Pushes the expiry of leases still there (ZADD XX: a released one stays released) and
#: sweeps the expired ones (a dead process's).
RENEW = Script(
    _COMMON
    + """
local lease_s = tonumber(ARGV[1])
local at = now()
local score = fmt(at + lease_s)
local i = 2
for k = 1, #KEYS do
  local n = tonumber(ARGV[i])
  i = i + 1
  for j = 1, n do
    redis.call('ZADD', KEYS[k], 'XX', score, ARGV[i])
    i = i + 1
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', fmt(at))
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
