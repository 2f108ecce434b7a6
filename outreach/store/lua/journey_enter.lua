-- Let one person into a journey (an enrollment), or say why not.
-- KEYS: 1 journey hash, 2 enrollment hash, 3 due zset, 4 enrollments index zset, 5 stats hash,
--       6 history list, 7 the person's journeys hash, 8 the journey.entered webhook outbox
-- ARGV: 1 ref, 2 email, 3 version, 4 first step id, 5 now, 6 first step due at,
--       7 re-entry (never | after_exit), 8 history entry (JSON), 9 journey id, 10 history kept,
--       11 the journey.entered event's data (JSON; '' when no webhook wants it): appended to
--       the outbox here, in the entry's own script (platform/webhooks.py flush_outbox)
-- Returns entered | active (in it now) | already (was in it; re-entry never) | inactive
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'active' and status ~= 'paused' then return 'inactive' end
local was = redis.call('HGET', KEYS[2], 'status')
if was == 'active' then return 'active' end
if was and ARGV[7] ~= 'after_exit' then return 'already' end
local gen = 1
if was then gen = tonumber(redis.call('HGET', KEYS[2], 'gen') or '1') + 1 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'ref', ARGV[1], 'email', ARGV[2], 'version', ARGV[3],
           'step', ARGV[4], 'seq', '1', 'status', 'active', 'entered_at', ARGV[5],
           'next_at', ARGV[6], 'due_at', ARGV[6], 'gen', tostring(gen))
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('HINCRBY', KEYS[5], 'enrolled', 1)
redis.call('HINCRBY', KEYS[5], 'active', 1)
redis.call('HINCRBY', KEYS[5], ARGV[4] .. '|entered', 1)
redis.call('RPUSH', KEYS[6], ARGV[8])
redis.call('LTRIM', KEYS[6], -tonumber(ARGV[10]), -1)
redis.call('HSET', KEYS[7], ARGV[9], ARGV[5])
if ARGV[11] and ARGV[11] ~= '' then redis.call('RPUSH', KEYS[8], ARGV[11]) end
return 'entered'
