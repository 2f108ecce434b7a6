-- Build the pipeline aggregates from every opportunity (once, when the hash lacks 'v':
-- installations whose opportunities predate it). Atomic, so no write is counted twice.
-- ARGV: 1 key tag. Returns the number of opportunities read.
--@prelude
local p = k('pipeline')
if redis.call('HEXISTS', p, 'v') == 1 then return -1 end
redis.call('DEL', p)
redis.call('HSET', p, 'v', '1')
local ids = redis.call('ZRANGE', k('opps'), 0, -1)
for _, opp_id in ipairs(ids) do
  local h = hash_table(k('opp', opp_id))
  if next(h) ~= nil then pipeline_apply(h, 1) end
end
return #ids
