-- Accept one registration with a rate limit and/or an Idempotency-Key, atomically.
-- (Without either, the service appends with a plain XADD.) A registration whose consent
-- waits for a double opt-in puts its confirmation mail in the confirmations schedule in
-- the same script (Redis is the outbox: the beat sends it if the nudge is lost).
-- KEYS: 1 stream, 2 rate-limit counter, 3 idempotency key, 4 confirmations schedule (opt.)
-- ARGV: 1 limit (0 = off), 2 window seconds, 3 use idempotency (0/1), 4 idempotency ttl,
--       5 payload (JSON), 6 confirmation (JSON, opt.), 7 when it is due (opt.)
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
if KEYS[4] and ARGV[6] and ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
end
return {'accepted', id}
