-- Take the members of a schedule zset that are due, atomically: each is returned to
-- exactly one caller. For task reminders a claim field is also set (HSETNX), so a
-- reminder for one task and due time is claimed once ever, across restarts and reruns.
-- KEYS: 1 schedule zset, 2 claims hash ('' for none)
-- ARGV: 1 now, 2 max members, 3 now as stored in the claim
-- Returns the claimed members.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  local member, score = due[i], due[i + 1]
  redis.call('ZREM', KEYS[1], member)
  if KEYS[2] == nil or KEYS[2] == '' then
    out[#out + 1] = member
  elseif redis.call('HSETNX', KEYS[2], member .. '|' .. score, ARGV[3]) == 1 then
    out[#out + 1] = member .. '|' .. score
  end
end
return out
