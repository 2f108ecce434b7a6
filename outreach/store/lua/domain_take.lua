-- Take what one message to a receiving domain needs, shared by all workers: a token of its
-- bucket (the rate) and a slot among its transactions at once (the concurrency); nothing is
-- taken when the answer is to wait.
-- KEYS: 1 the domain's bucket hash {tokens, ts, level}, 2 the domain's back-off key,
--       3 the domain's slots hash (send run -> since, ms)
-- ARGV: 1 now (ms), 2 rate per second (0: no rate), 3 burst, 4 concurrency (0: no limit),
--       5 send run, 6 heartbeat key prefix (a run's heartbeat is prefix .. run),
--       7 milliseconds to wait for a slot, 8 '1': the back-off applies
-- Returns 0 (taken) or the milliseconds to wait (the back-off after a 421/4.7.x, the next
-- token, or a slot).
if ARGV[8] == '1' then
  local backoff = redis.call('PTTL', KEYS[2])
  if backoff > 0 then return backoff end
end
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, run = tonumber(ARGV[4]), ARGV[5]
if limit > 0 and redis.call('HEXISTS', KEYS[3], run) == 0 then
  local held = redis.call('HLEN', KEYS[3])
  if held >= limit then
    -- full: the slots of runs whose heartbeat is gone (a killed worker) are free again
    for _, holder in ipairs(redis.call('HKEYS', KEYS[3])) do
      if redis.call('EXISTS', ARGV[6] .. holder) == 0 then
        redis.call('HDEL', KEYS[3], holder)
        held = held - 1
      end
    end
    if held >= limit then return tonumber(ARGV[7]) end
  end
end
if rate > 0 then
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
  if wait > 0 then return wait end
end
if limit > 0 then
  redis.call('HSET', KEYS[3], run, ARGV[1])
  redis.call('PEXPIRE', KEYS[3], 86400000)  -- gone with the last holder's day, at the latest
end
return 0
