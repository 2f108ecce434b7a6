-- Queue again, in one new batch, the given recipients of a campaign whose delivery failed
-- (retry-failed): each one still failed in the ledger is queued ('q|<ref>|'), its error
-- detail dropped, the campaign's failed counter lowered, and a bounce suppression that
-- this campaign set lifted (an unsubscribe or another campaign's bounce stays).
-- KEYS: 1 campaign hash, 2 ledger, 3 errors, 4 soft bounces, 5 suppressed, 6 suppression
--       info, 7 outstanding batches hash, 8 batch list key prefix (the number is appended)
-- ARGV: 1 this campaign's bounce suppression value ('bounced:<id>'), 2 now, 3.. addresses
-- Returns {queued, batch number ('' when none was queued)}.
local picked = {}
for i = 3, #ARGV do
  local value = redis.call('HGET', KEYS[2], ARGV[i])
  if value and string.sub(value, 1, 2) == 'f|' then
    picked[#picked + 1] = {ARGV[i], value}
  end
end
if #picked == 0 then return {0, ''} end
local batch = tostring(redis.call('HINCRBY', KEYS[1], 'batch_seq', 1))
for _, item in ipairs(picked) do
  local email, value = item[1], item[2]
  local ref = string.match(value, '^f|([^|]*)') or ''
  if redis.call('HGET', KEYS[5], email) == ARGV[1] then
    redis.call('HDEL', KEYS[5], email)
    redis.call('HDEL', KEYS[6], email)
  end
  redis.call('HDEL', KEYS[3], email)
  redis.call('HDEL', KEYS[4], email)
  redis.call('HSET', KEYS[2], email, 'q|' .. ref .. '|')
  redis.call('HINCRBY', KEYS[1], 'failed', -1)
  redis.call('RPUSH', KEYS[8] .. batch, email)
end
redis.call('HSET', KEYS[7], batch, ARGV[2])
return {#picked, batch}
