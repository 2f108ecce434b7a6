-- Queue one page of a campaign's audience into send batches, each address at most once.
-- KEYS: 1 campaign hash, 2 ledger hash, 3 batches hash
-- ARGV: 1 batch key prefix (…:batch:), 2 batch size, 3 now, 4 list index, 5 member cursor,
--       6 exhausted (0/1), 7 count, 8 campaign id, 9 the per-address campaigns index
--       (Keys.address_campaigns), then per candidate: email, person ref, verdict (verdict:
--       '1' eligible, 'x' suppressed, anything else skipped)
-- Every address given a ledger entry here gets the campaign in its index (the same
-- transaction): erasure reads the index, never every ledger; retention drops the entry with
-- the ledger.
-- Returns the numbers of the new batches, or -1 when the campaign is not sending.
--@campaign_index
if redis.call('HGET', KEYS[1], 'status') ~= 'sending' then return -1 end
local prefix, size, now = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local created = {}
local current, length = nil, 0
local campaign_id, index = ARGV[8], ARGV[9]
local i = 10
for _ = 1, tonumber(ARGV[7]) do
  local email, ref, verdict = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  if verdict == '1' then
    if redis.call('HSETNX', KEYS[2], email, 'q|' .. ref .. '|') == 1 then
      index_campaign(index, email, campaign_id)
      if not current or length >= size then
        current = redis.call('HINCRBY', KEYS[1], 'batch_seq', 1)
        length = 0
        created[#created + 1] = current
        redis.call('HSET', KEYS[3], current, now)
      end
      redis.call('RPUSH', prefix .. current, email)
      length = length + 1
      redis.call('HINCRBY', KEYS[1], 'targeted', 1)
    end
  elseif verdict == 'x' then
    if redis.call('HSETNX', KEYS[2], email, 'x|' .. ref .. '|' .. now) == 1 then
      index_campaign(index, email, campaign_id)
      redis.call('HINCRBY', KEYS[1], 'suppressed', 1)
      redis.call('HINCRBY', KEYS[1], 'targeted', 1)
    end
  end
end
redis.call('HSET', KEYS[1], 'd_list', ARGV[4], 'd_after', ARGV[5])
if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'dispatched', '1') end
return created
