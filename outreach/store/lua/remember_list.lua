-- Add a list id to a person's own list of lists (field 'lists'), atomically.
-- KEYS: 1 person hash; ARGV: 1 list id
local mine = redis.call('HGET', KEYS[1], 'lists')
if not mine then
  redis.call('HSET', KEYS[1], 'lists', ARGV[1])
elseif not string.find(',' .. mine .. ',', ',' .. ARGV[1] .. ',', 1, true) then
  redis.call('HSET', KEYS[1], 'lists', mine .. ',' .. ARGV[1])
end
return 1
