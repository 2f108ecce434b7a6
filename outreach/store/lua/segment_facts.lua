--@prelude
-- What segment rules read about a page of people, at once (people/segments/facts.py
-- ``load_many``): one argument per person instead of a command per person and fact (the
-- client's cost of settling a batch was mostly packing those commands).
-- ARGV: 1 key tag, 2 '1' to read their events, 3 n (how many lists), 4 .. 3+n the list ids,
-- 4+n m (how many hash fields; 0: the whole hash), the m fields, then refs ('l:<id>', 'c:<id>').
-- Returns one JSON text (cjson: one bulk string, not ~30 reply elements a person; an empty
-- table is written {}) of, for each person in turn: their hash (m > 0: the values of the m
-- fields, false where absent, HMGET; else name/value pairs, HGETALL), their events (LRANGE;
-- empty unless asked), their score in each list (false when not a member).
local events = ARGV[2] == '1'
local n = tonumber(ARGV[3])
local lists = {}
for i = 1, n do lists[i] = k('list', ARGV[3 + i], 'm') end
local m = tonumber(ARGV[4 + n])
local fields = {}
for i = 1, m do fields[i] = ARGV[4 + n + i] end
local kinds = {l = 'lead', c = 'contact'}
local none = {}
local out = {}
for i = 5 + n + m, #ARGV do
  local ref = ARGV[i]
  local id = string.sub(ref, 3)
  local key = k(kinds[string.sub(ref, 1, 1)] or '-', id)
  if m > 0 then
    out[#out + 1] = redis.call('HMGET', key, unpack(fields))
  else
    out[#out + 1] = redis.call('HGETALL', key)
  end
  out[#out + 1] = events and redis.call('LRANGE', k('events', ref), 0, -1) or none
  for j = 1, n do
    out[#out + 1] = redis.call('ZSCORE', lists[j], id) or false
  end
end
return cjson.encode(out)
