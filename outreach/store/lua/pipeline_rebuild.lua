-- Build the pipeline aggregates from every opportunity, one chunk per call (installations
-- whose opportunities predate them): 'built' is the highest opportunity sequence counted
-- so far. Writes meanwhile (pipeline_apply) count for opportunities already passed and
-- are left to the build for the others, so nothing is counted twice or missed. The last
-- chunk sets 'v' (built). Each call runs briefly: Redis is never blocked for long.
-- ARGV: 1 key tag, 2 chunk size. Returns 1 when the aggregates are complete, else 0.
--@prelude
local p = k('pipeline')
if redis.call('HGET', p, 'v') == PIPELINE_VERSION then return 1 end
local built = redis.call('HGET', p, 'built')
if not built or redis.call('HEXISTS', p, 'v') == 1 then  -- none, or an older version
  redis.call('DEL', p, k('opps', 'stage', 'qualify'), k('opps', 'stage', 'develop'),
             k('opps', 'stage', 'propose'), k('opps', 'stage', 'close'))
  built = '0'
  redis.call('HSET', p, 'built', '0')
end
local rows = redis.call('ZRANGEBYSCORE', k('opps'), '(' .. built, '+inf', 'WITHSCORES', 'LIMIT', 0,
                        tonumber(ARGV[2]))
for i = 1, #rows, 2 do
  redis.call('HSET', p, 'built', rows[i + 1])
  local h = hash_table(k('opp', rows[i]))
  if next(h) ~= nil then pipeline_apply(h, 1, rows[i + 1], rows[i]) end
end
if #rows < 2 * tonumber(ARGV[2]) then
  redis.call('HSET', p, 'v', PIPELINE_VERSION)
  redis.call('HDEL', p, 'built')
  return 1
end
return 0
