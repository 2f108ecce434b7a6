-- Record one open, click or unsubscribe of a campaign recipient: the campaign's stats, its
-- report counters, the person's event history and a lead's engagement score, in one step.
-- The rules of machine opens are outreach/campaigns/machine_opens.py (read it first).
-- KEYS: 1 campaign hash, 2 campaign 'seen' hash, 3 person's events list, 4 person hash,
--       5 lead scores zset, 6 ledger hash, 7 report hash, 8 hourly hash, 9 links hash,
--       10 conversion candidates zset (leads still new, by score), 11 experiment variants
--       hash (address -> variant; anyone else got the campaign's x_rest), 12 score decay
--       hash, 13 the lead's scored items list (scores: _scoring.lua), 14 the saved segments
--       zset, 15 the people whose segments are to be re-evaluated (Keys.segment_dirty),
--       16 the journeys' inbox list (a journey send's campaign: its first human open and first
--       click are left there, so a branch waiting on them wakes; journeys sit above campaigns)
-- ARGV: 1 kind (open | click | unsubscribe), 2 person ref, 3 link id ('' unless a click),
--       4 now (seconds, fractions allowed), 5 '1' when the user agent is a machine's,
--       6 machine open seconds, 7 open score gain, 8 click score gain, 9 lead id ('' = not
--       a lead), 10 this event's history entry, 11 the history entry of the open a click
--       proves, 12 scanner burst seconds, 13 scanner minimum links, 14 campaign id
-- 'seen' fields per person (<ref>): o| human open (value: when), C| clicked some link,
-- c|<ref>|<link> clicks of that link, u| unsubscribed, m| machine open, S| link scanner,
-- kt| first click, kn| distinct links clicked, ke| clicks, g| score given in this campaign (scaled).
-- Report fields: l|<link>|c clicks, l|<link>|u unique clicks, d|<domain>|o / |c people who
-- opened / clicked (d|<domain>|s, |b: finish_send.lua, bounce.lua); v|<variant>|o / |c people
-- of an experiment's variant who opened / clicked (v|<variant>|s: finish_send.lua). Hourly: <hour>|o first
-- human opens, <hour>|c human clicks.
-- Returns 1 when a human open or a new click was counted, 2 when a scanner was detected,
-- 0 otherwise. A non-zero answer while any segment is saved also marks the person in KEYS[15]
-- (the caller re-evaluates their segments, then clears the mark; the beat settles the marks
-- of a worker killed in between).
--@scoring
local campaign, seen, history, person = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kind, ref, link, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local lead_id = ARGV[9]

local function changed(result)
  if result ~= 0 and redis.call('EXISTS', KEYS[14]) == 1 then redis.call('SADD', KEYS[15], ref) end
  return result
end

local function hour_of(t) return tostring(math.floor(t / 3600) * 3600) end

local email = redis.call('HGET', person, 'email')
local domain = email and string.match(email, '@([^@]+)$')

local function per_domain(stat, by)
  if domain then redis.call('HINCRBY', KEYS[7], 'd|' .. domain .. '|' .. stat, by) end
end

-- an experiment's variant of this person (nil without an experiment)
local variant = false
local function per_variant(stat, by)
  if variant == false then
    variant = nil
    if email and redis.call('HEXISTS', campaign, 'x_status') == 1 then
      variant = redis.call('HGET', KEYS[11], email) or redis.call('HGET', campaign, 'x_rest') or 'A'
    end
  end
  if variant then redis.call('HINCRBY', KEYS[7], 'v|' .. variant .. '|' .. stat, by) end
end

local function remember(entry)
  redis.call('LPUSH', history, entry)
  redis.call('LTRIM', history, 0, 199)
end

local function gain(points, what)
  if lead_id == '' or points == 0 or redis.call('EXISTS', person) == 0 then return end
  local scaled = score_add(person, lead_id, KEYS[13], KEYS[12], KEYS[5], KEYS[10], points, ARGV[4],
                           what)
  redis.call('HINCRBYFLOAT', seen, 'g|' .. ref, string.format('%.17g', scaled))
end

local function machine_open()
  if redis.call('HSETNX', seen, 'm|' .. ref, '1') == 1 then
    redis.call('HINCRBY', campaign, 'opened_machine', 1)
  end
end

local function journey_note(what)
  if KEYS[16] and redis.call('HEXISTS', campaign, 'journey_id') == 1 then
    redis.call('RPUSH', KEYS[16], what .. '|' .. ARGV[14] .. '|' .. ref)
  end
end

local function human_open(entry)
  if redis.call('HSETNX', seen, 'o|' .. ref, ARGV[4]) == 0 then return 0 end
  journey_note('open')
  redis.call('HINCRBY', campaign, 'opened', 1)
  redis.call('HINCRBY', KEYS[8], hour_of(now) .. '|o', 1)
  per_domain('o', 1)
  per_variant('o', 1)
  remember(entry)
  gain(tonumber(ARGV[7]), 'open|' .. ARGV[14] .. '|')
  return 1
end

-- a link scanner: what this person's events counted in this campaign becomes machine
local function scanner()
  redis.call('HSET', seen, 'S|' .. ref, ARGV[4])
  if redis.call('HDEL', seen, 'C|' .. ref) == 1 then
    redis.call('HINCRBY', campaign, 'clicked', -1)
    per_domain('c', -1)
    per_variant('c', -1)
  end
  -- every click of the burst came within a second of the first: taken from that hour
  local first = tonumber(redis.call('HGET', seen, 'kt|' .. ref))
  local clicks = tonumber(redis.call('HGET', seen, 'ke|' .. ref) or '0')
  redis.call('HINCRBY', KEYS[8], hour_of(first) .. '|c', -clicks)
  for _, link_id in ipairs(redis.call('HKEYS', KEYS[9])) do
    local n = redis.call('HGET', seen, 'c|' .. ref .. '|' .. link_id)
    if n then
      redis.call('HINCRBY', KEYS[7], 'l|' .. link_id .. '|c', -tonumber(n))
      redis.call('HINCRBY', KEYS[7], 'l|' .. link_id .. '|u', -1)
    end
  end
  local opened_at = redis.call('HGET', seen, 'o|' .. ref)
  if opened_at then
    redis.call('HDEL', seen, 'o|' .. ref)
    redis.call('HINCRBY', campaign, 'opened', -1)
    redis.call('HINCRBY', KEYS[8], hour_of(tonumber(opened_at)) .. '|o', -1)
    per_domain('o', -1)
    per_variant('o', -1)
    machine_open()
  end
  local given = tonumber(redis.call('HGET', seen, 'g|' .. ref) or '0')
  if given ~= 0 then
    redis.call('HDEL', seen, 'g|' .. ref)
    if lead_id ~= '' and redis.call('EXISTS', person) == 1 then
      score_take_back(person, lead_id, KEYS[13], KEYS[5], KEYS[10], given,
                      {'open|' .. ARGV[14] .. '|', 'click|' .. ARGV[14] .. '|'})
    end
  end
  -- the history (capped at 200 entries) forgets this campaign's opens and clicks
  local mine = {['open|' .. ARGV[14] .. '|'] = true, ['click|' .. ARGV[14] .. '|'] = true}
  for _, entry in ipairs(redis.call('LRANGE', history, 0, -1)) do
    local bar = string.find(entry, '|', 1, true)
    local prefix = bar and string.sub(entry, 1, (string.find(entry, '|', bar + 1, true) or 0))
    if prefix and mine[prefix] then redis.call('LREM', history, 0, entry) end
  end
end

if kind == 'unsubscribe' then
  if redis.call('HSETNX', seen, 'u|' .. ref, '1') == 0 then return 0 end
  redis.call('HINCRBY', campaign, 'unsubscribed', 1)
  remember(ARGV[10])
  return changed(1)
end

if kind == 'open' then
  local too_soon = false
  local entry = email and redis.call('HGET', KEYS[6], email)
  if entry and string.sub(entry, 1, 2) == 'S|' then
    local at = tonumber(string.match(entry, '|([^|]*)$'))
    too_soon = at ~= nil and now - at < tonumber(ARGV[6])
  end
  if ARGV[5] == '1' or too_soon then
    machine_open()
    return 0
  end
  return changed(human_open(ARGV[10]))
end

-- a click
if ARGV[5] == '1' or redis.call('HEXISTS', seen, 'S|' .. ref) == 1 then
  machine_open()
  return 0
end
local n = redis.call('HINCRBY', seen, 'c|' .. ref .. '|' .. link, 1)
redis.call('HINCRBY', seen, 'ke|' .. ref, 1)
redis.call('HINCRBY', KEYS[7], 'l|' .. link .. '|c', 1)
redis.call('HINCRBY', KEYS[8], hour_of(now) .. '|c', 1)
if n > 1 then return 0 end
redis.call('HINCRBY', KEYS[7], 'l|' .. link .. '|u', 1)
remember(ARGV[10])
gain(tonumber(ARGV[8]), 'click|' .. ARGV[14] .. '|' .. link)
local distinct = redis.call('HINCRBY', seen, 'kn|' .. ref, 1)
if distinct == 1 then redis.call('HSET', seen, 'kt|' .. ref, ARGV[4]) end
if redis.call('HSETNX', seen, 'C|' .. ref, '1') == 1 then
  redis.call('HINCRBY', campaign, 'clicked', 1)
  journey_note('click')
  per_domain('c', 1)
  per_variant('c', 1)
end
-- a click proves the message was opened, even when images were blocked
human_open(ARGV[11])
local links = redis.call('HLEN', KEYS[9])
if links >= tonumber(ARGV[13]) and distinct >= links
    and now - tonumber(redis.call('HGET', seen, 'kt|' .. ref)) <= tonumber(ARGV[12]) then
  scanner()
  return changed(2)
end
return changed(1)
