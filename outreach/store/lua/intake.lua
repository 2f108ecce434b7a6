-- Accept one registration with a rate limit and/or an Idempotency-Key, atomically.
-- (Without either, the service appends with a plain XADD.)
-- KEYS: 1 stream, 2 rate-limit counter, 3 idempotency key
-- ARGV: 1 limit (0 = off), 2 window seconds, 3 use idempotency (0/1), 4 idempotency ttl,
--       5 payload (JSON)
-- Returns {outcome, value}: accepted (entry id) | duplicate (first entry id) | limited (ttl)
local limit = tonumber(ARGV[1])
if limit > 0 then
  local n = redis.call('INCR', KEYS[2])
  if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
  if n > limit then
    local ttl = redis.call('TTL', KEYS[2])
    if ttl < 0 then
      redis.call('EXPIRE', KEYS[2], ARGV[2])
      ttl = tonumber(ARGV[2])
    end
    return {'limited', tostring(ttl)}
  end
end
if ARGV[3] == '1' then
  local known = redis.call('GET', KEYS[3])
  if known then return {'duplicate', known} end
end
local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[5])
if ARGV[3] == '1' then redis.call('SET', KEYS[3], id, 'EX', ARGV[4]) end
return {'accepted', id}
