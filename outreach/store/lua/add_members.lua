--@prelude
-- Add known people to a list by address, a chunk in one call: each address is looked up
-- in the type's email index, added with the next member sequence unless already on the
-- list, and the list remembered on the person (field 'lists').
-- KEYS: 1 the list's members zset, 2 the email index of the list's member type
-- ARGV: 1 key tag, 2 list id, 3 person key kind ('lead' | 'contact'), 4.. addresses
-- Returns {added, already members, n, the n unknown addresses..., id of each person added...}.
local added, already, unknown, joined = 0, 0, {}, {}
for i = 4, #ARGV do
  local person_id = redis.call('HGET', KEYS[2], ARGV[i])
  if not person_id then
    unknown[#unknown + 1] = ARGV[i]
  elseif redis.call('ZSCORE', KEYS[1], person_id) then
    already = already + 1
  else
    redis.call('ZADD', KEYS[1], redis.call('HINCRBY', seq, 'member', 1), person_id)
    remember_list(k(ARGV[3], person_id), ARGV[2])
    added = added + 1
    joined[#joined + 1] = person_id
    segment_dirty(string.sub(ARGV[3], 1, 1) .. ':' .. person_id)
  end
end
local out = {added, already, #unknown}
for _, email in ipairs(unknown) do out[#out + 1] = email end
for _, person_id in ipairs(joined) do out[#out + 1] = person_id end
return out
