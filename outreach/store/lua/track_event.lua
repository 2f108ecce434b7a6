-- Record a tracking event once: campaign stat, person's event history, lead engagement.
-- KEYS: 1 campaign hash, 2 campaign 'seen' hash, 3 person's events list, 4 lead hash
--       (any key when the person is a contact), 5 lead scores zset, 6 conversion
--       candidates zset (leads still new, by score)
-- ARGV: 1 distinct field (e.g. 'c|l:ld1|<link>'), 2 unique-stat field ('' = same as 1),
--       3 stat name ('' = none), 4 score gain, 5 lead id ('' = not a lead), 6 event entry
local first = redis.call('HSETNX', KEYS[2], ARGV[1], '1')
local count_stat = first
if ARGV[2] ~= '' then count_stat = redis.call('HSETNX', KEYS[2], ARGV[2], '1') end
if count_stat == 1 and ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[3], 1) end
if first == 1 then
  redis.call('LPUSH', KEYS[3], ARGV[6])
  redis.call('LTRIM', KEYS[3], 0, 199)
  local gain = tonumber(ARGV[4])
  if ARGV[5] ~= '' and gain > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
    local score = redis.call('HINCRBY', KEYS[4], 'score', gain)
    redis.call('ZADD', KEYS[5], score, ARGV[5])
    if redis.call('HGET', KEYS[4], 'status') == 'new' then redis.call('ZADD', KEYS[6], score, ARGV[5]) end
  end
end
return first
