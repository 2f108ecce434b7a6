-- Qualify leads: account (by company or domain) + contact (by email) + opportunity, each
-- lead marked qualified, its lead-list memberships moved to the parallel contact lists.
-- Atomic (one script) and idempotent (a qualified lead returns its existing ids).
-- ARGV: 1 key tag, 2 now, 3 auto (1 = only when status new, consent given and
--       score >= threshold), 4 threshold, 5 lead count, then per lead:
--       lead id, company key ('' none), domain key ('' none), account name,
--       estimated revenue, estimated close date, probability
-- Returns per lead {outcome, contact id, account id, opportunity id}; outcome: created |
--         existing | skipped | not_found | disqualified
--@prelude
local now, auto, threshold = ARGV[2], ARGV[3], ARGV[4]
local function qualify_one(lead_id, company_key, domain_key, account_name, revenue, close_date,
                           probability)
  local lkey = k('lead', lead_id)
  if redis.call('EXISTS', lkey) == 0 then return {'not_found', '', '', ''} end
  local lead = {}
  local flat = redis.call('HGETALL', lkey)
  for i = 1, #flat, 2 do lead[flat[i]] = flat[i + 1] end
  if lead.status == 'qualified' and lead.opportunity_id then
    return {'existing', lead.contact_id or '', lead.account_id or '', lead.opportunity_id}
  end
  if auto == '1' then
    if lead.status ~= 'new' or lead.consent ~= '1' or tonumber(lead.score or '0') < tonumber(threshold) then
      return {'skipped', '', '', ''}
    end
  elseif lead.status == 'disqualified' then
    return {'disqualified', '', '', ''}
  end

  -- account: matched by normalised company name, else by the email's (non free-mail) domain
  local account_id = ''
  local by_name, by_domain = k('account', 'by-name'), k('account', 'by-domain')
  if company_key ~= '' then account_id = redis.call('HGET', by_name, company_key) or '' end
  if account_id == '' and domain_key ~= '' then account_id = redis.call('HGET', by_domain, domain_key) or '' end
  if account_id == '' and (company_key ~= '' or domain_key ~= '') then
    local n
    account_id, n = new_id('account', 'ac')
    redis.call('HSET', k('account', account_id), 'name', account_name, 'created_at', now)
    if domain_key ~= '' then redis.call('HSET', k('account', account_id), 'domain', domain_key) end
    redis.call('ZADD', k('accounts'), n, account_id)
  end
  if account_id ~= '' then
    if company_key ~= '' then redis.call('HSETNX', by_name, company_key, account_id) end
    if domain_key ~= '' then redis.call('HSETNX', by_domain, domain_key, account_id) end
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
    'estimated_revenue', revenue, 'estimated_close_date', close_date, 'probability', probability,
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
  local kept = {}
  for list_id in string.gmatch(lead.lists or '', '[^,]+') do
    local members = k('list', list_id, 'm')
    local meta = redis.call('HMGET', k('list', list_id), 'member_type', 'parallel')
    if meta[1] == 'lead' and redis.call('ZREM', members, lead_id) == 1 then
      if meta[2] then
        add_member(meta[2], contact_id, ckey)
        remember_list(ckey, meta[2])
      end
    elseif meta[1] then
      kept[#kept + 1] = list_id
    end
  end
  if #kept > 0 then
    redis.call('HSET', lkey, 'lists', table.concat(kept, ','))
  else
    redis.call('HDEL', lkey, 'lists')
  end
  return {'created', contact_id, account_id, opp_id}
end

local results = {}
local i = 6
for n = 1, tonumber(ARGV[5]) do
  results[n] = qualify_one(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                           ARGV[i + 5], ARGV[i + 6])
  i = i + 7
end
return results
