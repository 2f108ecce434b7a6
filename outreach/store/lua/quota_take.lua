-- A global byte quota kept as a hash of holder -> bytes with a running 'total' field.
-- KEYS: 1 the quota hash
-- ARGV: 1 quota (bytes), 2 bytes to take (0: release instead), 3 holder
-- Taking: 1 when total + bytes <= quota (the holder's bytes are recorded and the total
-- grows), else 0 and nothing changes. Releasing: the holder's bytes leave the total; 1.
if tonumber(ARGV[2]) == 0 then
  local held = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '0')
  if held > 0 then
    redis.call('HDEL', KEYS[1], ARGV[3])
    local left = redis.call('HINCRBY', KEYS[1], 'total', -held)
    if left < 0 then redis.call('HSET', KEYS[1], 'total', 0) end
  end
  return 1
end
local take = tonumber(ARGV[2])
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if total + take > tonumber(ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'total', take)
redis.call('HSET', KEYS[1], ARGV[3], take)
return 1
