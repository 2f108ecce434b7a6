-- Add a campaign to (or drop it from) the per-address campaigns index for a chunk of the
-- addresses its ledger holds: retention drops a compacted campaign; the first retention run
-- puts the ledgers written before the index existed into it.
-- KEYS: 1 the index hash (Keys.address_campaigns)
-- ARGV: 1 campaign id, 2 'add' | 'remove', 3.. addresses
--@campaign_index
local add = ARGV[2] == 'add'
for i = 3, #ARGV do
  if add then
    index_campaign(KEYS[1], ARGV[i], ARGV[1])
  else
    unindex_campaign(KEYS[1], ARGV[i], ARGV[1])
  end
end
return #ARGV - 2
