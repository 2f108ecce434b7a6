-- Take the members of a schedule zset that are due, atomically: each is returned to
-- exactly one caller. For task reminders a claim field is also set (HSETNX), so a
-- reminder for one task and due time is claimed once ever, across restarts and reruns.
-- Without a claims hash, a lease (ARGV 4 > 0) keeps each member in the schedule, due again
-- that many seconds later, instead of removing it: its worker must reschedule or remove
-- it, and if that worker dies the member is taken again when the lease runs out.
-- KEYS: 1 schedule zset, 2 claims hash ('' for none)
-- ARGV: 1 now, 2 max members, 3 now as stored in the claim, 4 lease seconds (0: none)
-- Returns the claimed members.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  local member, score = due[i], due[i + 1]
  local lease = tonumber(ARGV[4] or '0')
  if (KEYS[2] == nil or KEYS[2] == '') and lease > 0 then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + lease, member)
  else
    redis.call('ZREM', KEYS[1], member)
  end
  if KEYS[2] == nil or KEYS[2] == '' then
    out[#out + 1] = member
  elseif redis.call('HSETNX', KEYS[2], member .. '|' .. score, ARGV[3]) == 1 then
    out[#out + 1] = member .. '|' .. score
  end
end
return out
