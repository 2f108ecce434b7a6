-- End the active enrollments of a stopped journey (a page of them), each at most once.
-- KEYS: 1 stats hash, then per enrollment: its hash, its history list
-- ARGV: 1 now, 2 history entry (JSON), 3 history kept
-- An enrollment that ended meanwhile (done, exited) is left as it is; a claimed step's
-- mark then finds it stopped and changes nothing. Returns how many were ended.
local ended = 0
for i = 2, #KEYS, 2 do
  local e = redis.call('HMGET', KEYS[i], 'status', 'step')
  if e[1] == 'active' then
    redis.call('HSET', KEYS[i], 'status', 'stopped', 'next_at', '', 'left_at', ARGV[1])
    redis.call('HDEL', KEYS[i], 'claim')
    redis.call('RPUSH', KEYS[i + 1], ARGV[2])
    redis.call('LTRIM', KEYS[i + 1], -tonumber(ARGV[3]), -1)
    if e[2] then redis.call('HINCRBY', KEYS[1], e[2] .. '|stopped', 1) end
    ended = ended + 1
  end
end
if ended > 0 then
  redis.call('HINCRBY', KEYS[1], 'active', -ended)
  redis.call('HINCRBY', KEYS[1], 'stopped', ended)
end
return ended
