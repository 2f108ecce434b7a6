-- The per-address campaigns index (Keys.address_campaigns): one hash, address -> the ids of
-- the campaigns whose ledger holds it, comma-joined (erasure reads it instead of every
-- ledger). Written only by scripts, so that concurrent writers never lose an id.
local function index_campaign(index, email, campaign_id)
  local ids = redis.call('HGET', index, email)
  if not ids then
    redis.call('HSET', index, email, campaign_id)
  elseif not string.find(',' .. ids .. ',', ',' .. campaign_id .. ',', 1, true) then
    redis.call('HSET', index, email, ids .. ',' .. campaign_id)
  end
end

local function unindex_campaign(index, email, campaign_id)
  local ids = redis.call('HGET', index, email)
  if not ids then return end
  local kept = {}
  for id in string.gmatch(ids, '[^,]+') do
    if id ~= campaign_id then kept[#kept + 1] = id end
  end
  if #kept == 0 then
    redis.call('HDEL', index, email)
  else
    redis.call('HSET', index, email, table.concat(kept, ','))
  end
end
