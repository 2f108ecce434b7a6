-- Take one token from a receiving domain's global bucket (all workers share it).
-- KEYS: 1 the domain's bucket hash {tokens, ts, level}, 2 the domain's back-off key
-- ARGV: 1 now (ms), 2 rate per second, 3 burst
-- Returns 0 (taken) or the milliseconds to wait (the back-off after a 421/4.7.x, or until
-- the next token).
local backoff = redis.call('PTTL', KEYS[2])
if backoff > 0 then return backoff end
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(h[1]) or burst
local ts = tonumber(h[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 600000)
return wait
