-- Shared helpers: the store puts this file where a script has a "--@prelude" line.
-- ARGV[1] is always the installation's key tag.
local tag = ARGV[1]
local function k(...) return table.concat({tag, ...}, ':') end
local seq = k('seq')

local digits = '0123456789abcdefghijklmnopqrstuvwxyz'
local function b36(n)
  local s = ''
  repeat
    local r = n % 36
    s = string.sub(digits, r + 1, r + 1) .. s
    n = math.floor(n / 36)
  until n == 0
  return s
end

-- a new id of a kind ('lead', 'list', ...): prefix .. base36(counter), and the counter
local function new_id(kind, prefix)
  local n = redis.call('HINCRBY', seq, kind, 1)
  return prefix .. b36(n), n
end

-- while any segment is saved, a person this script changes is marked for re-evaluation
-- (Keys.segment_dirty) with the change: the caller clears the mark once it has re-evaluated
-- them, and the beat settles what a killed worker left (people/segments/dirty.py)
local function segment_dirty(ref)
  if redis.call('EXISTS', k('segs')) == 1 then redis.call('SADD', k('segs', 'dirty'), ref) end
end

-- the person's own list of lists (field 'lists'), so that qualification and erasure
-- find memberships without scanning every list
local function remember_list(person_key, list_id)
  local mine = redis.call('HGET', person_key, 'lists')
  if not mine then
    redis.call('HSET', person_key, 'lists', list_id)
  elseif not string.find(',' .. mine .. ',', ',' .. list_id .. ',', 1, true) then
    redis.call('HSET', person_key, 'lists', mine .. ',' .. list_id)
  end
end

-- add a member to a list (unique, increasing member sequence as score)
local function add_member(list_id, person_id, person_key)
  local members = k('list', list_id, 'm')
  if not redis.call('ZSCORE', members, person_id) then
    redis.call('ZADD', members, redis.call('HINCRBY', seq, 'member', 1), person_id)
    remember_list(person_key, list_id)
  end
end

-- the pipeline aggregates (hash 'pipeline'): what one opportunity hash ``h`` (a table)
-- contributes, added (sign 1) or taken away (sign -1). Open: its stage and its expected
-- close month (count, estimated, probability-weighted revenue); won: count and revenue
-- (actual, else estimated); lost: count per reason. Only once the hash is built ('v'), or
-- while it is being built (pipeline_rebuild.lua, in chunks) for the opportunities whose
-- sequence number ``seq`` the build has passed ('built'). The same goes for the index of
-- open opportunities by stage ('opps:stage:<stage>', scored by ``seq``): the console's
-- pipeline columns page through it instead of filtering every open opportunity.
-- 'v' is the aggregates' version: PIPELINE_VERSION; an older one is built again.
local PIPELINE_VERSION = '2'
local function pipeline_apply(h, sign, seq, opp_id)
  local p = k('pipeline')
  if redis.call('HGET', p, 'v') ~= PIPELINE_VERSION then
    local built = tonumber(redis.call('HGET', p, 'built') or '-1')
    if built < 0 or tonumber(seq or '0') > built then return end
  end
  local status = h.status or 'open'
  local est = tonumber(h.estimated_revenue or '0') or 0
  if status == 'open' then
    local w = est * (tonumber(h.probability or '0') or 0) / 100
    local stage = h.stage or 'qualify'
    if sign > 0 then
      redis.call('ZADD', k('opps', 'stage', stage), seq, opp_id)
    else
      redis.call('ZREM', k('opps', 'stage', stage), opp_id)
    end
    redis.call('HINCRBY', p, 's|' .. stage .. '|n', sign)
    redis.call('HINCRBYFLOAT', p, 's|' .. stage .. '|e', sign * est)
    redis.call('HINCRBYFLOAT', p, 's|' .. stage .. '|w', sign * w)
    local month = string.sub(h.estimated_close_date or '', 1, 7)
    if month ~= '' then
      redis.call('HINCRBY', p, 'm|' .. month .. '|n', sign)
      redis.call('HINCRBYFLOAT', p, 'm|' .. month .. '|e', sign * est)
      redis.call('HINCRBYFLOAT', p, 'm|' .. month .. '|w', sign * w)
    end
  elseif status == 'won' then
    local revenue = tonumber(h.actual_revenue or '') or est
    redis.call('HINCRBY', p, 'won|n', sign)
    redis.call('HINCRBYFLOAT', p, 'won|r', sign * revenue)
  elseif status == 'lost' then
    redis.call('HINCRBY', p, 'lost|n', sign)
    redis.call('HINCRBY', p, 'lost|r|' .. (h.lost_reason or 'other'), sign)
  end
end

-- a system event on a record's timeline (``ref`` e.g. 'lead:ld1'), newest first, capped
local function audit(ref, event_type, at, by, detail)
  local entry = {type = event_type, at = tonumber(at), by = by}
  if detail then for name, value in pairs(detail) do entry[name] = value end end
  local key = k('audit', ref)
  redis.call('LPUSH', key, cjson.encode(entry))
  redis.call('LTRIM', key, 0, 499)
end

-- a hash as a table
local function hash_table(key)
  local out = {}
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do out[flat[i]] = flat[i + 1] end
  return out
end
