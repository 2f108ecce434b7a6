-- Memberships joined and left, a transaction's worth in one call (people/segments/members.py
-- ``Writes``: one command instead of two a move, which the client had to pack one by one).
-- KEYS: per move, the segment's bitmap of the person's kind, then the person's hash.
-- ARGV: per move, the person's bit, the segment's since field, and since ('' = leaves).
-- Returns the number of moves written.
for i = 1, #ARGV, 3 do
  local bitmap, person = KEYS[(i - 1) / 3 * 2 + 1], KEYS[(i - 1) / 3 * 2 + 2]
  if ARGV[i + 2] == '' then
    redis.call('SETBIT', bitmap, ARGV[i], 0)
    redis.call('HDEL', person, ARGV[i + 1])
  else
    redis.call('SETBIT', bitmap, ARGV[i], 1)
    redis.call('HSET', person, ARGV[i + 1], ARGV[i + 2])
  end
end
return #ARGV / 3
