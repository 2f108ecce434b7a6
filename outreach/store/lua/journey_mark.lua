-- Record what the claimed step did (compare-and-set on the step's seq and the claim's run).
-- KEYS: 1 enrollment hash, 2 due zset, 3 stats hash, 4 history list, 5 steps-per-10s counter,
--       6 the webhook outbox of the end's event (journey.completed | journey.exited)
-- ARGV: 1 ref, 2 seq, 3 run, 4 now, 5 mode (advance | defer | end), 6 this step's id,
--       7 outcome counter ('' none: e.g. sent, failed, unknown), 8 next step id,
--       9 next due at, 10 end status (done | exited | stopped), 11 history entry ('' none),
--       12 history kept, 13 the end event's data (JSON; '' none: nobody listens), appended
--       to KEYS 6 in this script so the event is never lost after the mark (flush_outbox),
--       14.. field/value pairs to set on the enrollment ('' value: delete)
-- defer: the step stays (due again at ARGV 9); advance: the next step, due at ARGV 9;
-- end: the enrollment is over with the end status.
-- Returns 1 when recorded, 0 when the claim was not this run's (nothing changed).
local e = redis.call('HMGET', KEYS[1], 'seq', 'claim', 'status')
if e[1] ~= ARGV[2] or e[3] ~= 'active' then return 0 end
local claim = e[2] or ''
if string.sub(claim, 1, #ARGV[3] + 1) ~= ARGV[3] .. '|' then return 0 end
redis.call('HDEL', KEYS[1], 'claim')
for i = 14, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if ARGV[11] ~= '' then
  redis.call('RPUSH', KEYS[4], ARGV[11])
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[12]), -1)
end
local mode = ARGV[5]
if mode == 'defer' then
  redis.call('HSET', KEYS[1], 'next_at', ARGV[9])
  redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
  return 1
end
redis.call('HINCRBY', KEYS[3], ARGV[6] .. '|done', 1)
if ARGV[7] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[6] .. '|' .. ARGV[7], 1) end
redis.call('INCR', KEYS[5])
redis.call('EXPIRE', KEYS[5], 120)
redis.call('HDEL', KEYS[1], 'await', 'branch_until', 'tries')
if mode == 'advance' then
  redis.call('HSET', KEYS[1], 'step', ARGV[8], 'seq', tostring(tonumber(e[1]) + 1),
             'next_at', ARGV[9], 'due_at', ARGV[9])
  redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
  redis.call('HINCRBY', KEYS[3], ARGV[8] .. '|entered', 1)
  return 1
end
redis.call('HSET', KEYS[1], 'status', ARGV[10], 'next_at', '', 'left_at', ARGV[4],
           'seq', tostring(tonumber(e[1]) + 1))
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'active', -1)
local counter = ARGV[10] == 'done' and 'completed' or ARGV[10]
redis.call('HINCRBY', KEYS[3], counter, 1)
if ARGV[13] ~= '' then redis.call('RPUSH', KEYS[6], ARGV[13]) end
return 1
