--@prelude
-- What one settling transaction writes, in one call (people/segments/members.py ``Writes``;
-- one argument for all of it: the client packs one string, not five a move).
-- ARGV: 1 key tag, 2 JSON {"m": moves, "a": due entries to set, "r": due entries to drop}:
--   a move [ref ('l:<id>' / 'c:<id>'), person number (the bit), since field, since
--   (epoch seconds; '' = leaves), segment id]: the bit of the segment's bitmap of the
--   person's kind (Keys.segment_leads / segment_contacts) and the since field of the
--   person's hash, together; a due entry to set ['<segment id>|<ref>', when], one to drop
--   '<segment id>|<ref>' (Keys.segment_due).
-- Returns the number of moves written.
local w = cjson.decode(ARGV[2])
local kinds = {l = {'lead', 'ml'}, c = {'contact', 'mc'}}
for _, move in ipairs(w.m) do
  local kind = kinds[string.sub(move[1], 1, 1)]
  local bitmap, person = k('seg', move[5], kind[2]), k(kind[1], string.sub(move[1], 3))
  if move[4] == '' then
    redis.call('SETBIT', bitmap, move[2], 0)
    redis.call('HDEL', person, move[3])
  else
    redis.call('SETBIT', bitmap, move[2], 1)
    redis.call('HSET', person, move[3], move[4])
  end
end
local due = k('segs', 'due')
for _, entry in ipairs(w.a) do redis.call('ZADD', due, entry[2], entry[1]) end
for first = 1, #w.r, 1000 do
  redis.call('ZREM', due, unpack(w.r, first, math.min(first + 999, #w.r)))
end
return #w.m
