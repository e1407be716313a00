/**
 * The Redis governor's Lua scripts (redis-governor-store.ts defines them as commands on the
 * connection): an attempt (releases ridden along, then hold, concurrency, spacing and points
 * checks, and a lease when asked), releases on their own, and a hold that is published. The attempt
 * and the hold read Redis' own TIME, so replicas' clocks never matter.
 */
import { WINDOW_BUCKETS } from './governor-store.js';

// Gives back the slots of earlier calls (RELEASES_LUA, below), then: KEYS 1–4 slots, points, last
// write, hold; ARGV 1–11 enforce, maxConcurrent, pointsPerMinute, spacingMs (with headroom), points,
// write, slotId, slotTtlMs, lease slots (0 = no lease asked), lease points, leaseMs. Reply {code,
// value}: 0 admitted (value = bucket; {0, bucket, 1, lease bucket} when a lease was granted too),
// 1 held (ms left), 2 concurrency, 3 spacing (ms to wait), 4 points (ms to wait).
// A lease is granted to an admitted read only when the credential stays within half of each limit
// with it: its slots are members <slotId>~1…n of the slots zset (in flight like any slot, with the
// slot lease), its points are charged in the bucket of the lease's end (Redis' now + leaseMs), so they
// stay in the window for at least a minute after any call the lease admits.
// Releases: KEYS 5… slots and points of each, ARGV 12… slotId, bucket, points to give back (0 when
// the call was sent) of each.
const RELEASES_LUA = (keyAt: number, argAt: number) => `
local k, a = ${keyAt}, ${argAt}
while KEYS[k + 1] do
  redis.call('ZREM', KEYS[k], ARGV[a])
  local back = tonumber(ARGV[a + 2])
  if back > 0 and redis.call('HEXISTS', KEYS[k + 1], ARGV[a + 1]) == 1 then
    if redis.call('HINCRBY', KEYS[k + 1], ARGV[a + 1], -back) <= 0 then redis.call('HDEL', KEYS[k + 1], ARGV[a + 1]) end
  end
  k, a = k + 2, a + 3
end
`;

export const ACQUIRE = `
if redis.replicate_commands then redis.replicate_commands() end
${RELEASES_LUA(5, 12)}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(redis.call('GET', KEYS[4]) or '0')
if hold > now then return {1, hold - now} end
if ARGV[1] ~= '1' then return {0, 0} end
local maxC, ppm, spacing, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local write, ttl = ARGV[6] == '1', tonumber(ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= maxC then return {2, 0} end
if write and spacing > 0 then
  local last = tonumber(redis.call('GET', KEYS[3]) or '-1')
  if last >= 0 and now < last + spacing then return {3, last + spacing - now} end
end
local second = math.floor(now / 1000)
local oldest = second - ${WINDOW_BUCKETS - 1}
local fields = redis.call('HGETALL', KEYS[2])
local total, kept = 0, {}
for i = 1, #fields, 2 do
  local b, v = tonumber(fields[i]), tonumber(fields[i + 1])
  if b < oldest then redis.call('HDEL', KEYS[2], fields[i]) else total = total + v; kept[#kept + 1] = {b, v} end
end
if total > 0 and total + cost > ppm then
  table.sort(kept, function(x, y) return x[1] < y[1] end)
  local excess = total + cost - ppm
  for _, bv in ipairs(kept) do
    excess = excess - bv[2]
    if excess <= 0 then return {4, math.max(1, (bv[1] + ${WINDOW_BUCKETS}) * 1000 - now)} end
  end
  return {4, ${WINDOW_BUCKETS * 1000}}
end
redis.call('HINCRBY', KEYS[2], second, cost)
redis.call('PEXPIRE', KEYS[2], ${(WINDOW_BUCKETS + 2) * 1000})
redis.call('ZADD', KEYS[1], now + ttl, ARGV[7])
redis.call('PEXPIRE', KEYS[1], ttl + 1000)
if write then redis.call('SET', KEYS[3], now, 'PX', spacing + 1000) return {0, second} end
local leaseSlots, leasePoints = tonumber(ARGV[9]), tonumber(ARGV[10])
if leaseSlots > 0 and redis.call('ZCARD', KEYS[1]) + leaseSlots <= math.floor(maxC / 2) and total + cost + leasePoints <= math.floor(ppm / 2) then
  for i = 1, leaseSlots do redis.call('ZADD', KEYS[1], now + ttl, ARGV[7] .. '~' .. i) end
  local leaseBucket = math.floor((now + tonumber(ARGV[11])) / 1000)
  redis.call('HINCRBY', KEYS[2], leaseBucket, leasePoints)
  return {0, second, 1, leaseBucket}
end
return {0, second}
`;

// KEYS: slots and points of each release. ARGV: slotId, bucket, points to give back of each.
export const RELEASE = `
${RELEASES_LUA(1, 1)}
return 1
`;

// KEYS: hold. ARGV: ms, channel ('' = publish nothing), partition. Keeps the later of the current and
// the new end, and publishes "<partition> <ms left>" so that every process drops its lease at once.
export const HOLD = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + ms > current then redis.call('SET', KEYS[1], now + ms, 'PX', ms) current = now + ms end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3] .. ' ' .. (current - now)) end
return 1
`;
