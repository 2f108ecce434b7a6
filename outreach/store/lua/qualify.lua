-- Qualify a lead: account (by company or domain) + contact (by email) + opportunity, the
-- lead marked qualified, its lead-list memberships moved to the parallel contact lists.
-- Atomic (one script) and idempotent (a qualified lead returns its existing ids).
-- ARGV: 1 key tag, 2 lead id, 3 now, 4 company key ('' none), 5 domain key ('' none),
--       6 account name, 7 estimated revenue, 8 estimated close date, 9 probability,
--       10 auto (1 = only when status new, consent given and score >= threshold), 11 threshold
-- Returns {outcome, contact id, account id, opportunity id}; outcome: created | existing |
--         skipped | not_found | disqualified
local tag = ARGV[1]
local function k(...) return table.concat({tag, ...}, ':') end
local lead_id, now = ARGV[2], ARGV[3]
local lkey = k('lead', lead_id)
if redis.call('EXISTS', lkey) == 0 then return {'not_found', '', '', ''} end
local lead = {}
local flat = redis.call('HGETALL', lkey)
for i = 1, #flat, 2 do lead[flat[i]] = flat[i + 1] end
if lead.status == 'qualified' and lead.opportunity_id then
  return {'existing', lead.contact_id or '', lead.account_id or '', lead.opportunity_id}
end
if ARGV[10] == '1' then
  if lead.status ~= 'new' or lead.consent ~= '1' or tonumber(lead.score or '0') < tonumber(ARGV[11]) then
    return {'skipped', '', '', ''}
  end
elseif lead.status == 'disqualified' then
  return {'disqualified', '', '', ''}
end

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
local seq = k('seq')
local function new_id(kind, prefix)
  local n = redis.call('HINCRBY', seq, kind, 1)
  return prefix .. b36(n), n
end

-- account: matched by normalised company name, else by the email's (non free-mail) domain
local account_id = ''
local by_name, by_domain = k('account', 'by-name'), k('account', 'by-domain')
if ARGV[4] ~= '' then account_id = redis.call('HGET', by_name, ARGV[4]) or '' end
if account_id == '' and ARGV[5] ~= '' then account_id = redis.call('HGET', by_domain, ARGV[5]) or '' end
if account_id == '' and (ARGV[4] ~= '' or ARGV[5] ~= '') then
  local n
  account_id, n = new_id('account', 'ac')
  redis.call('HSET', k('account', account_id), 'name', ARGV[6], 'created_at', now)
  if ARGV[5] ~= '' then redis.call('HSET', k('account', account_id), 'domain', ARGV[5]) end
  redis.call('ZADD', k('accounts'), n, account_id)
end
if account_id ~= '' then
  if ARGV[4] ~= '' then redis.call('HSETNX', by_name, ARGV[4], account_id) end
  if ARGV[5] ~= '' then redis.call('HSETNX', by_domain, ARGV[5], account_id) end
end

-- contact: by email
local email = lead.email
local contact_id = redis.call('HGET', k('email', 'contact'), email)
local ckey
if contact_id then
  ckey = k('contact', contact_id)
  if account_id ~= '' then redis.call('HSETNX', ckey, 'account_id', account_id) end
  redis.call('HSETNX', ckey, 'lead_id', lead_id)
else
  local n
  contact_id, n = new_id('contact', 'ct')
  ckey = k('contact', contact_id)
  local copy = {'email', email, 'created_at', now, 'updated_at', now, 'lead_id', lead_id,
                'consent', lead.consent or '0'}
  for _, f in ipairs({'first_name', 'last_name', 'job_title', 'company', 'phone', 'mobile_phone',
                      'street', 'city', 'state', 'postal_code', 'country', 'regs'}) do
    if lead[f] and lead[f] ~= '' then copy[#copy + 1] = f; copy[#copy + 1] = lead[f] end
  end
  if account_id ~= '' then copy[#copy + 1] = 'account_id'; copy[#copy + 1] = account_id end
  redis.call('HSET', ckey, unpack(copy))
  redis.call('HSET', k('email', 'contact'), email, contact_id)
  redis.call('ZADD', k('contacts'), n, contact_id)
end
if account_id == '' then account_id = redis.call('HGET', ckey, 'account_id') or '' end

-- opportunity
local opp_id, on = new_id('opportunity', 'op')
redis.call('HSET', k('opp', opp_id), 'topic', lead.topic or ('Opportunity from ' .. email),
  'lead_id', lead_id, 'contact_id', contact_id, 'account_id', account_id,
  'estimated_revenue', ARGV[7], 'estimated_close_date', ARGV[8], 'probability', ARGV[9],
  'status', 'open', 'created_at', now, 'updated_at', now)
redis.call('ZADD', k('opps'), on, opp_id)
redis.call('ZADD', k('opps', 'st', 'open'), on, opp_id)
redis.call('HSET', k('opp', 'by-lead'), lead_id, opp_id)

-- the lead
redis.call('HSET', lkey, 'status', 'qualified', 'contact_id', contact_id, 'account_id', account_id,
  'opportunity_id', opp_id, 'qualified_at', now, 'updated_at', now)
local lead_seq = redis.call('ZSCORE', k('leads'), lead_id) or on
redis.call('ZADD', k('leads', 'st', 'qualified'), lead_seq, lead_id)

-- memberships move from each lead list to its parallel contact list
local lists = redis.call('ZRANGE', k('lists'), 0, -1)
for _, list_id in ipairs(lists) do
  local members = k('list', list_id, 'm')
  if redis.call('ZSCORE', members, lead_id) then
    local meta = redis.call('HMGET', k('list', list_id), 'member_type', 'parallel')
    if meta[1] == 'lead' then
      redis.call('ZREM', members, lead_id)
      if meta[2] then
        local target = k('list', meta[2], 'm')
        if not redis.call('ZSCORE', target, contact_id) then
          redis.call('ZADD', target, redis.call('HINCRBY', seq, 'member', 1), contact_id)
        end
      end
    end
  end
end
return {'created', contact_id, account_id, opp_id}
