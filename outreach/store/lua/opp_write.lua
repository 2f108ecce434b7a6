-- Change an opportunity atomically with everything that follows from it: status and owner
-- indexes, stage history, closing (won: probability 100, actual revenue defaults to the
-- estimate; lost: probability 0, a reason is required; reopening restores the probability
-- it had while open), the record's timeline and the pipeline aggregates.
-- ARGV: 1 key tag, 2 opportunity id, 3 now, 4 by, 5 number of fields to set, then
--       field, value pairs, then the number of fields to delete, then field names
-- Keeps each account's count of open opportunities ('accounts:open', read by segments).
-- Returns {'ok', old stage, new stage, old status, new status, old owner, new owner,
--          old account, new account}
--         or {'not_found'} / {'needs_lost_reason'}
--@prelude
local opp_id, now, by = ARGV[2], ARGV[3], ARGV[4]
local key = k('opp', opp_id)
local old = hash_table(key)
if next(old) == nil then return {'not_found'} end
local new = {}
for name, value in pairs(old) do new[name] = value end
local i = 6
local sets = {}
for _ = 1, tonumber(ARGV[5]) do
  new[ARGV[i]] = ARGV[i + 1]
  sets[ARGV[i]] = true
  i = i + 2
end
local dels = {}
for _ = 1, tonumber(ARGV[i]) do
  i = i + 1
  new[ARGV[i]] = nil
  dels[#dels + 1] = ARGV[i]
end

local old_status, new_status = old.status or 'open', new.status or 'open'
local old_stage, new_stage = old.stage or 'qualify', new.stage or 'qualify'
if new_status == 'lost' and (new.lost_reason or '') == '' then return {'needs_lost_reason'} end
if new_status ~= old_status then
  if old_status == 'open' then new.open_probability = old.probability or '' end
  if new_status == 'won' then
    new.probability = '100'
    new.lost_reason = nil
    if not sets.actual_revenue then new.actual_revenue = new.estimated_revenue or '0' end
    new.closed_at = now
  elseif new_status == 'lost' then
    new.probability = '0'
    new.actual_revenue = nil
    new.closed_at = now
  else
    if not sets.probability and (old.open_probability or '') ~= '' then
      new.probability = old.open_probability
    end
    new.closed_at, new.lost_reason, new.actual_revenue = nil, nil, nil
  end
elseif new_status == 'open' then
  new.lost_reason, new.actual_revenue = nil, nil  -- only closed opportunities have these
end
if new_stage ~= old_stage then
  local history = cjson.decode(old.stages or '[]')
  history[#history + 1] = {stage = new_stage, at = tonumber(now), by = by}
  new.stages = cjson.encode(history)
end
new.updated_at = now

-- write: every field that differs, every field that went away
local flat = {}
for name, value in pairs(new) do
  if old[name] ~= value then flat[#flat + 1] = name; flat[#flat + 1] = value end
end
local gone = {}
for name, _ in pairs(old) do if new[name] == nil then gone[#gone + 1] = name end end
local seq = redis.call('ZSCORE', k('opps'), opp_id) or 0
pipeline_apply(old, -1, seq, opp_id)
if #flat > 0 then redis.call('HSET', key, unpack(flat)) end
if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
pipeline_apply(new, 1, seq, opp_id)

local ref = 'opportunity:' .. opp_id
if new_status ~= old_status then
  redis.call('ZREM', k('opps', 'st', old_status), opp_id)
  redis.call('ZADD', k('opps', 'st', new_status), seq, opp_id)
  audit(ref, 'status_changed', now, by, {from = old_status, to = new_status,
        lost_reason = new.lost_reason, actual_revenue = tonumber(new.actual_revenue or '')})
end
if new_stage ~= old_stage then
  audit(ref, 'stage_changed', now, by, {from = old_stage, to = new_stage})
end
local old_account, new_account = old.account_id or '', new.account_id or ''
local was_open, is_open = old_status == 'open' and old_account ~= '', new_status == 'open' and new_account ~= ''
if was_open ~= is_open or old_account ~= new_account then
  local open = k('accounts', 'open')
  if was_open and redis.call('HINCRBY', open, old_account, -1) <= 0 then
    redis.call('HDEL', open, old_account)
  end
  if is_open then redis.call('HINCRBY', open, new_account, 1) end
end
local old_owner, new_owner = old.owner or '', new.owner or ''
if old_owner ~= new_owner then
  if old_owner ~= '' then redis.call('ZREM', k('opps', 'owner', old_owner), opp_id) end
  if new_owner ~= '' then redis.call('ZADD', k('opps', 'owner', new_owner), seq, opp_id) end
  audit(ref, 'owner_changed', now, by, {from = old.owner, to = new.owner})
end
return {'ok', old_stage, new_stage, old_status, new_status, old_owner, new_owner, old_account,
        new_account}
