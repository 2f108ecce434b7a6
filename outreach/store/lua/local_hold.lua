-- Hold the recipients of a local-time campaign whose moment is still ahead (campaigns.local_time):
-- each address is claimed in the ledger as waiting ('w|<ref>|') and put in the waiting zset
-- scored by its UTC moment, in one step, so an address is held (or queued) at most once.
-- KEYS: 1 campaign hash, 2 ledger hash, 3 waiting zset
-- ARGV: 1 count, then per recipient: email, person ref, moment (epoch seconds)
-- Returns how many were held, or -1 when the campaign is not sending.
if redis.call('HGET', KEYS[1], 'status') ~= 'sending' then return -1 end
local held = 0
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  local email, ref, moment = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  if redis.call('HSETNX', KEYS[2], email, 'w|' .. ref .. '|') == 1 then
    redis.call('ZADD', KEYS[3], moment, email)
    held = held + 1
  end
end
if held > 0 then
  redis.call('HINCRBY', KEYS[1], 'targeted', held)
  redis.call('HSET', KEYS[1], 'waiting_local', redis.call('ZCARD', KEYS[3]))
end
return held
