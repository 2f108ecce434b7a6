-- Qualify leads (Dynamics' Qualify): account + contact + opportunity, each optional, each
-- lead marked qualified, its lead-list memberships moved to the parallel contact lists, its
-- activities, registrations and engagement history carried to the contact and opportunity.
-- Atomic (one script) and idempotent (a qualified lead returns its existing ids).
-- ARGV: 1 key tag, 2 now, 3 auto (1 = only when status new, consent given and
--       current, decayed score, rounded, >= threshold: _scoring.lua), 4 threshold, 5 lead count, 6 assignment pool size, then the
--       pool's owner emails (round-robin for opportunities without an owner), then per lead:
--       lead id, company key ('' none), domain key ('' none), account name,
--       estimated revenue, estimated close date, probability,
--       create account (1|0), create contact (1|0), create opportunity (1|0),
--       account id to attach ('' match/create), contact id to attach ('' match/create),
--       owner ('' = the pool's next), by (who qualifies)
-- Returns per lead {outcome, contact id, account id, opportunity id, owner}; outcome:
--         created | existing | skipped | not_found | disqualified
--@prelude
--@scoring
local now, auto, threshold = ARGV[2], ARGV[3], ARGV[4]
local pool = {}
local pool_size = tonumber(ARGV[6])
for n = 1, pool_size do pool[n] = ARGV[6 + n] end
if redis.call('ZCARD', k('opps')) == 0 then redis.call('HSET', k('pipeline'), 'v', PIPELINE_VERSION) end

-- an account's contacts (account lists mail them); the first one is its primary contact
local function link_contact(account_id, contact_id)
  local n = redis.call('ZSCORE', k('contacts'), contact_id) or 0
  redis.call('ZADD', k('account', account_id, 'contacts'), n, contact_id)
  redis.call('HSETNX', k('account', account_id), 'primary_contact_id', contact_id)
end

local function carry_activities(lead_id, refs)
  local from = k('acts', 'lead:' .. lead_id)
  local rows = redis.call('ZRANGE', from, 0, -1, 'WITHSCORES')
  for i = 1, #rows, 2 do
    local act = k('act', rows[i])
    local mine = redis.call('HGET', act, 'refs') or ''
    for _, ref in ipairs(refs) do
      redis.call('ZADD', k('acts', ref), rows[i + 1], rows[i])
      if not string.find(',' .. mine .. ',', ',' .. ref .. ',', 1, true) then
        mine = mine .. ',' .. ref
      end
    end
    redis.call('HSET', act, 'refs', mine)
  end
end

local function qualify_one(lead_id, company_key, domain_key, account_name, revenue, close_date,
                           probability, create_account, create_contact, create_opportunity,
                           given_account, given_contact, owner, by)
  local lkey = k('lead', lead_id)
  if redis.call('EXISTS', lkey) == 0 then return {'not_found', '', '', '', ''} end
  local lead = hash_table(lkey)
  if lead.status == 'qualified' then
    return {'existing', lead.contact_id or '', lead.account_id or '', lead.opportunity_id or '',
            lead.owner or ''}
  end
  if auto == '1' then
    local current = (tonumber(lead.score or '0') or 0) / score_factor(k('leads', 'decay'), ARGV[2])
    if lead.status ~= 'new' or lead.consent ~= '1' or math.floor(current + 0.5) < tonumber(threshold) then
      return {'skipped', '', '', '', ''}
    end
  elseif lead.status == 'disqualified' then
    return {'disqualified', '', '', '', ''}
  end

  -- the owner: given, else the lead's, else the pool's next in turn (only when an
  -- opportunity is made, so that N promotions over P users give N/P each)
  if owner == '' then owner = lead.owner or '' end
  if owner == '' and create_opportunity == '1' and pool_size > 0 then
    local n = redis.call('HINCRBY', seq, 'assign', 1)
    owner = pool[((n - 1) % pool_size) + 1]
  end

  -- account: the given one; else matched by normalised company name, else by the email's
  -- (non free-mail) domain; else a new one (unless create_account is 0)
  local account_id = given_account
  local by_name, by_domain = k('account', 'by-name'), k('account', 'by-domain')
  if account_id == '' and create_account == '1' then
    if company_key ~= '' then account_id = redis.call('HGET', by_name, company_key) or '' end
    if account_id == '' and domain_key ~= '' then account_id = redis.call('HGET', by_domain, domain_key) or '' end
    if account_id == '' and (company_key ~= '' or domain_key ~= '') then
      local n
      account_id, n = new_id('account', 'ac')
      local akey = k('account', account_id)
      redis.call('HSET', akey, 'name', account_name, 'created_at', now)
      if domain_key ~= '' then redis.call('HSET', akey, 'domain', domain_key) end
      if owner ~= '' then redis.call('HSET', akey, 'owner', owner) end
      redis.call('ZADD', k('accounts'), n, account_id)
      if company_key ~= '' then
        redis.call('ZADD', k('account', 'names'), 0, company_key .. '|' .. account_id)
      end
      audit('account:' .. account_id, 'created', now, by, {lead_id = lead_id})
    end
    if account_id ~= '' then
      if company_key ~= '' then redis.call('HSETNX', by_name, company_key, account_id) end
      if domain_key ~= '' then redis.call('HSETNX', by_domain, domain_key, account_id) end
    end
  end

  -- contact: the given one; else by email (unless create_contact is 0)
  local email = lead.email
  local contact_id = given_contact
  local ckey = nil
  if contact_id == '' and create_contact == '1' then
    contact_id = redis.call('HGET', k('email', 'contact'), email) or ''
    if contact_id == '' then
      local n
      contact_id, n = new_id('contact', 'ct')
      ckey = k('contact', contact_id)
      local copy = {'email', email, 'created_at', now, 'updated_at', now, 'lead_id', lead_id,
                    'consent', lead.consent or '0'}
      for _, f in ipairs({'first_name', 'last_name', 'job_title', 'company', 'phone', 'mobile_phone',
                          'street', 'city', 'state', 'postal_code', 'country', 'regs',
                          'email_given'}) do
        if lead[f] and lead[f] ~= '' then copy[#copy + 1] = f; copy[#copy + 1] = lead[f] end
      end
      if account_id ~= '' then copy[#copy + 1] = 'account_id'; copy[#copy + 1] = account_id end
      if owner ~= '' then copy[#copy + 1] = 'owner'; copy[#copy + 1] = owner end
      redis.call('HSET', ckey, unpack(copy))
      redis.call('HSET', k('email', 'contact'), email, contact_id)
      redis.call('ZADD', k('contacts'), n, contact_id)
      if account_id ~= '' then link_contact(account_id, contact_id) end
    end
  end
  if contact_id ~= '' and ckey == nil then
    -- an existing contact: link it, and carry this lead's history over when it came from
    -- another lead (its own lead's history is read through lead_id)
    ckey = k('contact', contact_id)
    if account_id ~= '' and redis.call('HSETNX', ckey, 'account_id', account_id) == 1 then
      link_contact(account_id, contact_id)
    end
    if owner ~= '' then redis.call('HSETNX', ckey, 'owner', owner) end
    local linked = redis.call('HGET', ckey, 'lead_id')
    if not linked then
      redis.call('HSET', ckey, 'lead_id', lead_id)
    elseif linked ~= lead_id then
      if lead.regs and lead.regs ~= '' then
        local regs = redis.call('HGET', ckey, 'regs')
        redis.call('HSET', ckey, 'regs', (regs and regs ~= '') and (regs .. ';' .. lead.regs) or lead.regs)
      end
      local events = redis.call('LRANGE', k('events', 'l:' .. lead_id), 0, -1)
      local target = k('events', 'c:' .. contact_id)
      for i = #events, 1, -1 do redis.call('LPUSH', target, events[i]) end
      if #events > 0 then redis.call('LTRIM', target, 0, 199) end
    end
  end
  if account_id == '' and ckey and create_account == '1' then
    account_id = redis.call('HGET', ckey, 'account_id') or ''
  end

  -- opportunity
  local opp_id = ''
  if create_opportunity == '1' then
    local on
    opp_id, on = new_id('opportunity', 'op')
    local okey = k('opp', opp_id)
    local first_stage = cjson.encode({{stage = 'qualify', at = tonumber(now), by = by}})
    local fields = {'topic', lead.topic or ('Opportunity from ' .. email), 'lead_id', lead_id,
      'contact_id', contact_id, 'account_id', account_id, 'estimated_revenue', revenue,
      'estimated_close_date', close_date, 'probability', probability, 'status', 'open',
      'stage', 'qualify', 'stages', first_stage, 'created_at', now, 'updated_at', now}
    if owner ~= '' then fields[#fields + 1] = 'owner'; fields[#fields + 1] = owner end
    redis.call('HSET', okey, unpack(fields))
    redis.call('ZADD', k('opps'), on, opp_id)
    redis.call('ZADD', k('opps', 'st', 'open'), on, opp_id)
    if account_id ~= '' then redis.call('HINCRBY', k('accounts', 'open'), account_id, 1) end
    if owner ~= '' then redis.call('ZADD', k('opps', 'owner', owner), on, opp_id) end
    redis.call('HSET', k('opp', 'by-lead'), lead_id, opp_id)
    pipeline_apply(hash_table(okey), 1, on, opp_id)
    audit('opportunity:' .. opp_id, 'created', now, by, {lead_id = lead_id, owner = owner})
  end

  -- the lead
  local lead_fields = {'status', 'qualified', 'qualified_at', now, 'updated_at', now}
  for _, pair in ipairs({{'contact_id', contact_id}, {'account_id', account_id},
                         {'opportunity_id', opp_id}}) do
    if pair[2] ~= '' then lead_fields[#lead_fields + 1] = pair[1]; lead_fields[#lead_fields + 1] = pair[2] end
  end
  redis.call('HSET', lkey, unpack(lead_fields))
  local lead_seq = redis.call('ZSCORE', k('leads'), lead_id) or 0
  redis.call('ZADD', k('leads', 'st', 'qualified'), lead_seq, lead_id)
  redis.call('ZREM', k('leads', 'st', 'disqualified'), lead_id)
  redis.call('ZREM', k('leads', 'cand'), lead_id)
  audit('lead:' .. lead_id, 'qualified', now, by, {contact_id = contact_id, account_id = account_id,
        opportunity_id = opp_id, auto = (auto == '1')})

  -- activities follow the lead to its contact and opportunity
  local refs = {}
  if contact_id ~= '' then refs[#refs + 1] = 'contact:' .. contact_id end
  if opp_id ~= '' then refs[#refs + 1] = 'opportunity:' .. opp_id end
  if #refs > 0 then carry_activities(lead_id, refs) end

  -- memberships move from each lead list to its parallel contact list
  if contact_id ~= '' then
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
  end
  segment_dirty('l:' .. lead_id)
  if contact_id ~= '' then segment_dirty('c:' .. contact_id) end
  return {'created', contact_id, account_id, opp_id, owner}
end

local results = {}
local i = 7 + pool_size
for n = 1, tonumber(ARGV[5]) do
  results[n] = qualify_one(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                           ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9],
                           ARGV[i + 10], ARGV[i + 11], ARGV[i + 12], ARGV[i + 13])
  i = i + 14
end
-- journeys that start on qualification (Keys.journey_triggers 'jnys:triggers', field
-- 'qualified', counts the active ones): each lead qualified now leaves 'qual|<ref>' (its
-- contact, else the lead) in Keys.journey_inbox ('jnys:inbox') in this same script
if tonumber(redis.call('HGET', k('jnys', 'triggers'), 'qualified') or '0') > 0 then
  local j = 7 + pool_size
  for n = 1, tonumber(ARGV[5]) do
    local r = results[n]
    if r[1] == 'created' then
      local ref = (r[2] and r[2] ~= '') and ('c:' .. r[2]) or ('l:' .. ARGV[j])
      redis.call('RPUSH', k('jnys', 'inbox'), 'qual|' .. ref)
    end
    j = j + 14
  end
end
return results
