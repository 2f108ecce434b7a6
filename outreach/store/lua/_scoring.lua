-- Engagement scores that fade (read outreach/people/scoring.py first). A lead's 'score'
-- field, the lead scores zset and the conversion candidates hold the score scaled to the
-- decay epoch: the sum of points x 2^((at - epoch) / half_life), so one sorted set orders
-- leads by their current score at any moment, and the current value is one multiplication.
-- Each scored event is kept in the lead's items list (newest first, 'at|points|scaled|what',
-- at most SCORE_ITEMS); an item that falls off is folded into the lead's 'score_rest'
-- (scaled), 'score_rest_points' and 'score_rest_at', so the items always add up to the score.
local SCORE_ITEMS = 20  -- bounded: memory per lead (DESIGN: <= 1 KiB a lead)

local function score_factor(decay_key, at)
  local d = redis.call('HMGET', decay_key, 'epoch', 'half_life')
  local h = tonumber(d[2] or '') or 0
  if h <= 0 then return 1 end
  return 2 ^ ((tonumber(at) - (tonumber(d[1] or '') or 0)) / h)
end

local function score_set(lkey, lead_id, scores, cand, score)
  redis.call('ZADD', scores, score, lead_id)
  if redis.call('HGET', lkey, 'status') == 'new' then redis.call('ZADD', cand, score, lead_id) end
end

-- ``points`` at ``at`` for a lead (its hash must exist); returns the scaled amount added
local function score_add(lkey, lead_id, items, decay_key, scores, cand, points, at, what)
  local scaled = points * score_factor(decay_key, at)
  local score = tonumber(redis.call('HINCRBYFLOAT', lkey, 'score', string.format('%.17g', scaled)))
  score_set(lkey, lead_id, scores, cand, score)
  redis.call('LPUSH', items, at .. '|' .. points .. '|' .. string.format('%.17g', scaled) .. '|' .. what)
  while redis.call('LLEN', items) > SCORE_ITEMS do
    local old = redis.call('RPOP', items)
    local a, p, s = string.match(old, '^([^|]*)|([^|]*)|([^|]*)|')
    redis.call('HINCRBYFLOAT', lkey, 'score_rest', s)
    redis.call('HINCRBYFLOAT', lkey, 'score_rest_points', p)
    local last = tonumber(redis.call('HGET', lkey, 'score_rest_at') or '0') or 0
    if tonumber(a) > last then redis.call('HSET', lkey, 'score_rest_at', a) end
  end
  return scaled
end

-- take back ``scaled`` given by the items whose 'what' starts with one of ``prefixes``
local function score_take_back(lkey, lead_id, items, scores, cand, scaled, prefixes)
  local found = 0
  for _, entry in ipairs(redis.call('LRANGE', items, 0, -1)) do
    local s, what = string.match(entry, '^[^|]*|[^|]*|([^|]*)|(.*)$')
    for _, prefix in ipairs(prefixes) do
      if what and string.sub(what, 1, #prefix) == prefix then
        redis.call('LREM', items, 0, entry)
        found = found + tonumber(s)
        break
      end
    end
  end
  local rest = scaled - found
  if rest > 1e-9 * scaled then  -- some of it was folded into the rest meanwhile
    redis.call('HINCRBYFLOAT', lkey, 'score_rest', string.format('%.17g', -rest))
  end
  local score = tonumber(redis.call('HINCRBYFLOAT', lkey, 'score', string.format('%.17g', -scaled)))
  score_set(lkey, lead_id, scores, cand, score)
end
