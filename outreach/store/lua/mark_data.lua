-- The claim holder is about to send DATA: from now on the message may be delivered.
-- KEYS: 1 ledger hash, 2 claims hash
-- ARGV: 1 email, 2 run id, 3 now
-- Returns 1 when the claim is still this run's ('s' -> 'd'), 0 when it was taken over (the
-- run was thought dead): then the transaction must stop before DATA.
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry or string.sub(entry, 1, 1) ~= 's' then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
local bar = string.find(entry, '|', 3, true)
redis.call('HSET', KEYS[1], ARGV[1], 'd|' .. string.sub(entry, 3, bar - 1) .. '|' .. ARGV[3])
return 1
