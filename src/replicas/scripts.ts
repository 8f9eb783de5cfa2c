/**
 * The Lua scripts the replicas run in Redis: each is one atomic step, so two
 * replicas never read-modify-write the same value from Node.
 */

/**
 * Rate-limit round (rateLimit.scope cluster). KEYS: the buckets; ARGV: rate
 * (tokens per ms), burst, ttl (ms), then the tokens each key used since the
 * replica's last round. Each bucket refills on Redis's own clock, pays what
 * was used (it may go below zero: an overshoot is paid back before anyone is
 * admitted again) and answers what is left, as a string (Lua numbers become
 * integers on the way out).
 */
export const BUCKETS_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local out = {}
for i, key in ipairs(KEYS) do
  local used = tonumber(ARGV[3 + i])
  local v = redis.call('HMGET', key, 'tokens', 'last')
  local tokens = tonumber(v[1]) or burst
  local last = tonumber(v[2]) or now
  if now > last then tokens = math.min(burst, tokens + (now - last) * rate) end
  tokens = tokens - used
  redis.call('HSET', key, 'tokens', tostring(tokens), 'last', tostring(now))
  redis.call('PEXPIRE', key, ttl)
  out[i] = tostring(tokens)
end
return out
`;

/**
 * An admin action (last write wins). KEYS: the actions hash, the events
 * channel; ARGV: field, record (JSON), its time (epoch ms), the event to
 * publish. A record older than the stored one is dropped (a replica back from
 * an outage writing what it did meanwhile); returns 1 when written.
 */
export const ACTION_LUA = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local ok, rec = pcall(cjson.decode, cur)
  if ok and type(rec) == 'table' and tonumber(rec.t) and tonumber(rec.t) > tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[4])
return 1
`;
