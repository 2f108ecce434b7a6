-- Count a page of an audience, each address once across pages: the addresses seen so far
-- are a set in Redis (no caller holds them), dropped by its expiry.
-- KEYS: 1 the seen set
-- ARGV: 1 expiry seconds, then (address, verdict) pairs (verdict as dispatch gives it:
--       'x' suppressed, 'n' no consent, 'd' disqualified, anything else sendable)
-- Returns {new addresses, sendable, suppressed, no_consent, disqualified} of this page.
local out = {0, 0, 0, 0, 0}
local slot = {x = 3, n = 4, d = 5}
for i = 2, #ARGV, 2 do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    out[1] = out[1] + 1
    local s = slot[ARGV[i + 1]] or 2
    out[s] = out[s] + 1
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return out
