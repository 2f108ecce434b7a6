-- Record the outcome of a claimed recipient. Only a 'sending' entry changes (compare-and-set).
-- KEYS: 1 campaign hash, 2 ledger hash, 3 'sending' zset, 4 suppressed hash
-- ARGV: 1 email, 2 outcome (sent | failed | requeue | unknown), 3 now,
--       4 suppression reason for failed ('' = do not suppress)
local email, outcome, now = ARGV[1], ARGV[2], ARGV[3]
local entry = redis.call('HGET', KEYS[2], email)
if not entry or string.sub(entry, 1, 1) ~= 's' then return 0 end
local bar = string.find(entry, '|', 3, true)
local ref = string.sub(entry, 3, bar - 1)
redis.call('ZREM', KEYS[3], email)
if outcome == 'sent' then
  redis.call('HSET', KEYS[2], email, 'S|' .. ref .. '|' .. now)
  redis.call('HINCRBY', KEYS[1], 'sent', 1)
  redis.call('HSET', KEYS[1], 'consecutive_failures', 0)
elseif outcome == 'failed' then
  redis.call('HSET', KEYS[2], email, 'f|' .. ref .. '|' .. now)
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
  if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[4], email, ARGV[4]) end
elseif outcome == 'unknown' then
  redis.call('HSET', KEYS[2], email, 'u|' .. ref .. '|' .. now)
  redis.call('HINCRBY', KEYS[1], 'unknown', 1)
else
  redis.call('HSET', KEYS[2], email, 'q|' .. ref .. '|')
end
return 1
