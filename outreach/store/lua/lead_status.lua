-- A lead's status change other than qualify (qualify.lua): disqualify or reactivate, with
-- every index that reads the status kept in the same script: the status sets
-- ('leads:st:qualified', 'leads:st:disqualified'; 'new' is the rest) and the conversion
-- candidates ('leads:cand', leads that can still be promoted, by score). One script, so the
-- conversion pass (which re-checks the status inside qualify.lua) cannot interleave.
-- ARGV: 1 key tag, 2 now, 3 lead id, 4 action (disqualify | reactivate), 5 by ('' none),
--       6 reason, 7 note
-- Returns {outcome, status before}: ok | not_found | has_opportunity | not_disqualified
--@prelude
local now, lead_id, action, by = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local lkey = k('lead', lead_id)
local h = redis.call('HMGET', lkey, 'status', 'opportunity_id', 'score')
local status = h[1]
if not status then return {'not_found', ''} end
local who = by
if who == '' then who = nil end
local seq = redis.call('ZSCORE', k('leads'), lead_id) or 0

if action == 'disqualify' then
  if h[2] and h[2] ~= '' then return {'has_opportunity', status} end
  redis.call('HSET', lkey, 'status', 'disqualified', 'disqualify_reason', ARGV[6],
             'disqualify_note', ARGV[7], 'updated_at', now)
  redis.call('ZREM', k('leads', 'st', 'qualified'), lead_id)
  redis.call('ZADD', k('leads', 'st', 'disqualified'), seq, lead_id)
  redis.call('ZREM', k('leads', 'cand'), lead_id)
  local detail = {reason = ARGV[6]}
  if ARGV[7] ~= '' then detail.note = ARGV[7] end
  audit('lead:' .. lead_id, 'disqualified', now, who, detail)
  segment_dirty('l:' .. lead_id)
  return {'ok', status}
end

-- reactivate: back to new, a candidate again
if status ~= 'disqualified' then return {'not_disqualified', status} end
redis.call('HSET', lkey, 'status', 'new', 'updated_at', now)
redis.call('HDEL', lkey, 'disqualify_reason', 'disqualify_note')
redis.call('ZREM', k('leads', 'st', 'disqualified'), lead_id)
redis.call('ZREM', k('leads', 'st', 'qualified'), lead_id)
redis.call('ZADD', k('leads', 'cand'), tonumber(h[3] or '0') or 0, lead_id)
audit('lead:' .. lead_id, 'reactivated', now, who, nil)
segment_dirty('l:' .. lead_id)
return {'ok', status}
