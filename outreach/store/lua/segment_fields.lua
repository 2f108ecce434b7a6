--@prelude
-- A page of people's hash fields at once, for previews of unsaved segment rules
-- (people/segments/candidates.py): one argument per person instead of a command each (the
-- client's cost of a pipelined scan is mostly packing commands).
-- ARGV: 1 key tag, 2 n (how many fields), 3 .. 2+n the fields, then refs ('l:<id>', 'c:<id>')
-- Returns the n values of each person in turn (nil where a field is not set).
local n = tonumber(ARGV[2])
local fields = {}
for i = 1, n do fields[i] = ARGV[2 + i] end
local kinds = {l = 'lead', c = 'contact'}
local out = {}
for i = 3 + n, #ARGV do
  local ref = ARGV[i]
  local values = redis.call('HMGET', k(kinds[string.sub(ref, 1, 1)] or '-', string.sub(ref, 3)),
                            unpack(fields))
  for j = 1, n do out[#out + 1] = values[j] end
end
return out
