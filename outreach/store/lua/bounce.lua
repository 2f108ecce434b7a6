-- Apply one bounce or complaint report to a campaign recipient, once.
-- KEYS: 1 campaign hash, 2 ledger hash, 3 suppressed hash, 4 suppression info hash,
--       5 this report's 'seen' key, 6 the person's events list, 7 the address's soft-bounce
--       zset, 8 recipient errors hash, 9 the campaign's report hash ('d|<domain>|b')
-- ARGV: 1 email, 2 ref, 3 kind (hard | soft | blocked | complaint), 4 now, 5 soft limit,
--       6 suppression value, 7 suppression info (JSON), 8 event entry, 9 error text,
--       10 soft window seconds, 11 seen TTL seconds, 12 report id
-- Returns 0 (already processed), -1 (not a recipient of this campaign), 1 (recorded),
-- 2 (recorded and the address is now suppressed).
--@suppression
if redis.call('SET', KEYS[5], '1', 'NX', 'EX', tonumber(ARGV[11])) == false then return 0 end
local email, ref, kind, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local entry = redis.call('HGET', KEYS[2], email)
if not entry then return -1 end
local bar = string.find(entry, '|', 3, true)
if not bar or string.sub(entry, 3, bar - 1) ~= ref then return -1 end
local state = string.sub(entry, 1, 1)
redis.call('LPUSH', KEYS[6], ARGV[8])
redis.call('LTRIM', KEYS[6], 0, 199)
if ARGV[9] ~= '' then redis.call('HSET', KEYS[8], email, ARGV[9]) end
local suppress_it = false
if kind == 'hard' then
  -- `bounced` counts recipients: another report (another id) for one already bounced adds
  -- its event and error, never a second count
  if state ~= 'B' then
    redis.call('HINCRBY', KEYS[1], 'bounced', 1)
    local domain = string.match(email, '@([^@]+)$')
    if domain then redis.call('HINCRBY', KEYS[9], 'd|' .. domain .. '|b', 1) end
  end
  if state ~= 'C' then redis.call('HSET', KEYS[2], email, 'B|' .. ref .. '|' .. now) end
  suppress_it = true
elseif kind == 'soft' then
  redis.call('HINCRBY', KEYS[1], 'soft_bounced', 1)
  redis.call('ZADD', KEYS[7], tonumber(now), ARGV[12])
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', tonumber(now) - tonumber(ARGV[10]))
  redis.call('EXPIRE', KEYS[7], tonumber(ARGV[10]))
  if redis.call('ZCARD', KEYS[7]) >= tonumber(ARGV[5]) then
    suppress_it = true
    if state ~= 'C' then redis.call('HSET', KEYS[2], email, 'B|' .. ref .. '|' .. now) end
  end
elseif kind == 'blocked' then
  redis.call('HINCRBY', KEYS[1], 'blocked', 1)
elseif kind == 'complaint' then
  if state ~= 'C' then
    redis.call('HINCRBY', KEYS[1], 'complained', 1)
    redis.call('HSET', KEYS[2], email, 'C|' .. ref .. '|' .. now)
  end
  suppress_it = true
end
if suppress_it and suppress(KEYS[3], KEYS[4], email, ARGV[6], ARGV[7]) then return 2 end
return 1
