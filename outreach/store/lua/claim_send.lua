-- Claim one recipient of a campaign before its SMTP transaction (exactly-once sending).
-- KEYS: 1 campaign hash, 2 ledger hash, 3 'sending' zset, 4 suppressed hash, 5 token bucket,
--       6 erased set (address hashes), 7 recipient errors hash, 8 claims hash (address ->
--       run), 9 this run's heartbeat key
-- ARGV: 1 email, 2 now (seconds, float), 3 claim timeout seconds, 4 rate/s (0 = unlimited),
--       5 address hash, 6 run id ('' = none), 7 heartbeat seconds, 8 heartbeat key prefix
-- Ledger values are 'state|person ref|time'; states: q queued, s sending (claimed, the
-- transaction has not reached DATA), d data (the content may be on its way), S sent,
-- f failed, u unknown, x suppressed.
-- Returns {outcome, detail}: claimed | wait (ms) | stopped (status) | done | busy | unknown | suppressed
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'sending' then return {'stopped', status or ''} end
local email, now, run = ARGV[1], tonumber(ARGV[2]), ARGV[6]
if run ~= '' then redis.call('SET', KEYS[9], '1', 'PX', math.floor(tonumber(ARGV[7]) * 1000)) end
local entry = redis.call('HGET', KEYS[2], email)
if not entry then return {'done', ''} end
local state = string.sub(entry, 1, 1)
local bar = string.find(entry, '|', 3, true)
local ref = string.sub(entry, 3, bar - 1)
if state == 's' or state == 'd' then
  local since = tonumber(string.sub(entry, bar + 1)) or now
  local owner = redis.call('HGET', KEYS[8], email)
  local dead
  if owner then
    dead = owner ~= run and redis.call('EXISTS', ARGV[8] .. owner) == 0
  else  -- a claim from before heartbeats: only its age tells
    dead = now - since > tonumber(ARGV[3])
  end
  if not dead then return {'busy', ref} end
  redis.call('HDEL', KEYS[8], email)
  redis.call('ZREM', KEYS[3], email)
  if state == 's' and owner then
    -- its worker died before DATA: provably not delivered, so it may be sent now
    state = 'q'
  else
    -- policy: content that may have gone out is never resent; it is reported as unknown
    redis.call('HSET', KEYS[2], email, 'u|' .. ref .. '|' .. ARGV[2])
    redis.call('HINCRBY', KEYS[1], 'unknown', 1)
    redis.call('HSET', KEYS[7], email, 'the worker sending it stopped after ' ..
      (state == 'd' and 'the content went out' or 'claiming it') ..
      ' and never reported: may or may not be delivered')
    return {'unknown', ref}
  end
end
if state ~= 'q' then return {'done', state} end
if redis.call('HEXISTS', KEYS[4], email) == 1 or redis.call('SISMEMBER', KEYS[6], ARGV[5]) == 1 then
  redis.call('HSET', KEYS[2], email, 'x|' .. ref .. '|' .. ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'suppressed', 1)
  return {'suppressed', ref}
end
local rate = tonumber(ARGV[4])
if rate > 0 then
  local burst = math.max(1, rate)
  local bucket = redis.call('HMGET', KEYS[5], 'tokens', 'ts')
  local tokens = tonumber(bucket[1]) or burst
  local last = tonumber(bucket[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
  if tokens < 1 then
    redis.call('HSET', KEYS[5], 'tokens', tostring(tokens), 'ts', ARGV[2])
    if entry and string.sub(entry, 1, 1) ~= 'q' then
      redis.call('HSET', KEYS[2], email, 'q|' .. ref .. '|')  -- recovered, waits its turn
    end
    return {'wait', tostring(math.ceil((1 - tokens) / rate * 1000))}
  end
  redis.call('HSET', KEYS[5], 'tokens', tostring(tokens - 1), 'ts', ARGV[2])
  redis.call('EXPIRE', KEYS[5], 3600)
end
redis.call('HSET', KEYS[2], email, 's|' .. ref .. '|' .. ARGV[2])
redis.call('ZADD', KEYS[3], now, email)
if run ~= '' then redis.call('HSET', KEYS[8], email, run) end
return {'claimed', ref}
