-- Claim an enrollment's current step before acting on it (claim, act, mark).
-- KEYS: 1 journey hash, 2 enrollment hash, 3 due zset
-- ARGV: 1 ref, 2 run id, 3 now, 4 claim timeout seconds, 5 heartbeat key prefix
-- The claim is 'run|at|seq'. A claim whose run's heartbeat is gone (or, with no heartbeat,
-- older than the timeout) is stale: it is taken over and reported, so that the caller
-- resolves what the dead run may have done (a send asks the campaign ledger) instead of
-- blindly acting again.
-- Returns {outcome, seq, stale claim}: claimed | stale | busy | held (journey not running)
-- | gone (the enrollment is not active any more)
local e = redis.call('HMGET', KEYS[2], 'status', 'seq', 'claim')
if e[1] ~= 'active' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'gone', '', ''}
end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'active' then return {'held', e[2], ''} end
local outcome = 'claimed'
local old = e[3] or ''
if old ~= '' then
  local bar = string.find(old, '|', 1, true)
  local run = string.sub(old, 1, bar - 1)
  local rest = string.sub(old, bar + 1)
  local bar2 = string.find(rest, '|', 1, true)
  local at = tonumber(string.sub(rest, 1, bar2 - 1)) or 0
  local seq = string.sub(rest, bar2 + 1)
  if seq == e[2] then
    if run == ARGV[2] then return {'busy', e[2], old} end
    -- a live run is still at it; a dead one's claim is taken over once the timeout passed
    if redis.call('EXISTS', ARGV[5] .. run) == 1 then return {'busy', e[2], old} end
    if tonumber(ARGV[3]) - at < tonumber(ARGV[4]) then return {'busy', e[2], old} end
    outcome = 'stale'
  end
end
redis.call('HSET', KEYS[2], 'claim', ARGV[2] .. '|' .. ARGV[3] .. '|' .. e[2])
return {outcome, e[2], old}
