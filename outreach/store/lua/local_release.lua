-- Release the waiting recipients of a local-time campaign whose moment has come into send
-- batches (campaigns.local_time), as many as the send window has room for: each one's
-- ledger entry goes from waiting to queued, it leaves the waiting zset and joins a batch in
-- the same step, so a crash never loses or doubles anyone.
-- KEYS: 1 campaign hash, 2 ledger hash, 3 waiting zset, 4 batches hash
-- ARGV: 1 batch key prefix (…:batch:), 2 batch size, 3 now (epoch seconds, as stored),
--       4 now (the score bound), 5 window (batches outstanding at most)
-- Returns the numbers of the new batches.
if redis.call('HGET', KEYS[1], 'status') ~= 'sending' then return {} end
local size = tonumber(ARGV[2])
local room = tonumber(ARGV[5]) - redis.call('HLEN', KEYS[4])
if room <= 0 or redis.call('ZCARD', KEYS[3]) == 0 then return {} end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[4], 'LIMIT', 0, room * size)
local created = {}
local current, length = nil, 0
for _, email in ipairs(due) do
  redis.call('ZREM', KEYS[3], email)
  local entry = redis.call('HGET', KEYS[2], email)
  if entry and string.sub(entry, 1, 1) == 'w' then
    local bar = string.find(entry, '|', 3, true)
    redis.call('HSET', KEYS[2], email, 'q|' .. string.sub(entry, 3, bar - 1) .. '|')
    if not current or length >= size then
      current = redis.call('HINCRBY', KEYS[1], 'batch_seq', 1)
      length = 0
      created[#created + 1] = current
      redis.call('HSET', KEYS[4], current, ARGV[3])
    end
    redis.call('RPUSH', ARGV[1] .. current, email)
    length = length + 1
  end
end
redis.call('HSET', KEYS[1], 'waiting_local', redis.call('ZCARD', KEYS[3]))
return created
