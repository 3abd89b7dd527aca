/**
 * Lua shared by the cluster's scripts: time from Redis (one clock for every instance), a lease
 * check, releasing a place, ending a record and pruning ended records. Each script is
 * `PRELUDE + body`; ARGV[1] is always the key base (`<prefix>{c}:`, keys.ts), so every key a
 * script builds carries the cluster's one hash tag.
 */
export const PRELUDE = `
local base = ARGV[1]
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function leaseLive(id, now)
  local score = redis.call('ZSCORE', base .. 'instances', id)
  return score and tonumber(score) >= now
end
local function release(sid)
  local addr = redis.call('HGET', base .. 'places', sid)
  if not addr then return 0 end
  redis.call('HDEL', base .. 'places', sid)
  if addr ~= '' then
    if redis.call('HINCRBY', base .. 'clients', addr, -1) <= 0 then redis.call('HDEL', base .. 'clients', addr) end
  end
  return 1
end
local function isEnded(state)
  return state == 'stopped' or state == 'failed'
end
local function prune(now, retainCount, retainMs)
  local old = redis.call('ZRANGEBYSCORE', base .. 'ended', '-inf', now - retainMs)
  for _, sid in ipairs(old) do
    redis.call('DEL', base .. 'session:' .. sid)
    redis.call('ZREM', base .. 'sessions', sid)
    redis.call('ZREM', base .. 'ended', sid)
  end
  local over = redis.call('ZCARD', base .. 'ended') - retainCount
  if over > 0 then
    local gone = redis.call('ZRANGE', base .. 'ended', 0, over - 1)
    for _, sid in ipairs(gone) do
      redis.call('DEL', base .. 'session:' .. sid)
      redis.call('ZREM', base .. 'sessions', sid)
      redis.call('ZREM', base .. 'ended', sid)
    end
  end
end
-- Leases run on the time Redis serves the cluster, not on wall time: when no instance reached
-- Redis for over half a lease (Redis was down or unreachable for all, with its data kept), every
-- lease is moved on by that gap, so an outage of Redis itself declares no instance lost.
local function catchUp(now, leaseMs)
  local last = tonumber(redis.call('GET', base .. 'clock') or '')
  if last and now - last > leaseMs / 2 then
    local scored = redis.call('ZRANGE', base .. 'instances', 0, -1, 'WITHSCORES')
    for i = 1, #scored, 2 do
      redis.call('ZADD', base .. 'instances', tonumber(scored[i + 1]) + now - last, scored[i])
    end
  end
  if redis.call('ZCARD', base .. 'instances') > 0 then redis.call('SET', base .. 'clock', now) end
end
-- An instance is lost: its sessions fail (instance_lost), their places are freed, it leaves a tombstone.
local function reapInstance(id, now, retainCount, retainMs)
  local owned = redis.call('SMEMBERS', base .. 'owned:' .. id)
  for _, sid in ipairs(owned) do
    release(sid)
    local key = base .. 'session:' .. sid
    local state = redis.call('HGET', key, 'state')
    if state and not isEnded(state) then
      redis.call('HSET', key, 'state', 'failed', 'reason', 'instance_lost', 'endedAt', now)
      redis.call('ZADD', base .. 'ended', now, sid)
    end
  end
  redis.call('DEL', base .. 'owned:' .. id, base .. 'instance:' .. id, base .. 'stops:' .. id)
  redis.call('ZREM', base .. 'instances', id)
  -- Read by the lost instance when it comes back (a pause): it stops what it still runs.
  redis.call('SET', base .. 'fenced:' .. id, now, 'PX', 86400000)
  prune(now, retainCount, retainMs)
  return #owned
end
`;
