-- Rebase lead scores (read outreach/people/scoring.py first): every scaled score becomes
-- its value at ``now`` under the stored decay, and the decay becomes (epoch ``now``,
-- half-life ARGV[3]): from here on scores fade at the new rate. Scaled amounts kept
-- beside it (each lead's 'score_rest', each item's scaled part) are rescaled alike.
-- One script so that no writer scales a gain to the old epoch after it; it touches every
-- scored lead, which is why it runs rarely (scoring.MAX_EXPONENT half-lives apart, or
-- when the half-life setting changes).
-- ARGV: 1 key tag, 2 now, 3 new half-life (seconds; 0 = off). Returns the leads rescaled.
--@prelude
--@scoring
local now, half_life = ARGV[2], ARGV[3]
local decay = k('leads', 'decay')
local down = 1 / score_factor(decay, now)
local scores, cand = k('leads', 'score'), k('leads', 'cand')
local function fmt(x) return string.format('%.17g', x) end
local rows = redis.call('ZRANGE', scores, 0, -1, 'WITHSCORES')
for i = 1, #rows, 2 do
  local lead_id, value = rows[i], tonumber(rows[i + 1]) * down
  local lkey = k('lead', lead_id)
  if redis.call('EXISTS', lkey) == 1 then
    redis.call('HSET', lkey, 'score', fmt(value))
    local rest = tonumber(redis.call('HGET', lkey, 'score_rest') or '')
    if rest then redis.call('HSET', lkey, 'score_rest', fmt(rest * down)) end
    local items = k('lead', lead_id, 'scored')
    local entries = redis.call('LRANGE', items, 0, -1)
    for j, entry in ipairs(entries) do
      local a, p, s, what = string.match(entry, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
      if a then redis.call('LSET', items, j - 1, a .. '|' .. p .. '|' .. fmt(tonumber(s) * down) .. '|' .. what) end
    end
    score_set(lkey, lead_id, scores, cand, value)
  else
    redis.call('ZREM', scores, lead_id)
  end
end
redis.call('HSET', decay, 'epoch', now, 'half_life', half_life)
return #rows / 2
