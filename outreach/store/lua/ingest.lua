-- Process a batch of registrations from the intake stream, atomically and idempotently:
-- dedupe by normalised email into leads (or attach to a known contact), create the asset's
-- parallel lists on first use, add list memberships, keep history, score repeats, then
-- XACK + XDEL the entries. A registration already in the results hash changes nothing.
--
-- ARGV: 1 key tag, 2 group, 3 now (epoch seconds), 4 repeat weight, 5 event-after-paper weight,
--       6 seconds to keep results, 7 record count, 8 mode, 9 the records: a JSON array of
--       one array of strings a record (one argument for the batch: the client packs one
--       string, not twenty a registration):
--       [id, email, kind, asset, consent(0/1/p), at (epoch seconds), source, evidence (JSON
--       of the consent given, or ''), trusted (1: an authenticated write),
--       [field, value, field, value...]]
-- An untrusted record (the public door, no API key) updates an unqualified lead as always,
-- but never a contact's fields nor a qualified lead's: the registration goes into the
-- history, and the values it brought that differ become a proposed update on the timeline
-- (the record's audit list, entry type 'proposed_update'; the contact's, for a qualified
-- lead that has one) that sales may accept (sales/proposals.py).
-- consent 'p': given but pending a double opt-in confirmation (stored as consent 'p').
-- Records whose email is empty are acknowledged and marked rejected (reason in kind).
-- mode 'stream': records are intake stream entries (results kept, entries acked); returns the
-- count. mode 'import': records are CSV rows (nothing kept per id, nothing acked, a repeat
-- registration for an asset already in the history adds no history entry); returns one
-- outcome per record: 'c' created, 'u' updated, 'n' unchanged, 'x' rejected, then the
-- person ('l:<id>' or 'c:<id>'). In 'stream' mode while any webhook exists (Keys.webhooks,
-- 'whs', not empty: looked at here, so intake's drain makes no extra round trip for it), the
-- script returns {count, n, id of each of the n leads it created..., ref of each person it
-- changed...} instead (for lead.created), and so it does while any segment is saved (Keys.segments,
-- 'segs', not empty: the people it changed are re-evaluated for the segments that read them).
-- Mode 'contacts' is 'import' for contacts: an address no contact has becomes a new contact
-- (outcome 'c', 'c:<id>'), never a lead.
-- In 'import' mode while any segment is saved the outcomes end with one more element, 's'.
-- While any segment is saved each person reported (the touched refs, an import's outcomes)
-- is '<ref>\t<what changed>': '*' for a person the batch created, else the space-separated
-- tokens of people/segments/rules.py ``reads`` that it wrote ('field:<name>', 'list:<id>').
-- While any segment is saved each person changed is also added to Keys.segment_dirty, with
-- the change: a worker killed before it re-evaluates them leaves them to the beat.
-- While any webhook exists, each lead created is also appended to the lead.created outbox
-- (Keys.webhook_outbox) in this same script: its event is never lost between this script
-- and the deliveries (platform/webhooks.py flush_outbox writes them).
--@prelude
--@scoring
local group = ARGV[2]
local now = ARGV[3]
local w_repeat = tonumber(ARGV[4])
local w_event = tonumber(ARGV[5])
local keep_seconds = tonumber(ARGV[6])
local count = tonumber(ARGV[7])
local import = ARGV[8] == 'import' or ARGV[8] == 'contacts'
-- mode 'contacts': an import of contacts (as 'import'), where an address no contact has
-- becomes a new contact (never a lead): the contacts import runs one script per chunk
local as_contacts = ARGV[8] == 'contacts'
-- journeys that start on an asset's registrations: Keys.journey_triggers ('jnys:triggers',
-- field 'registration:<slug>') counts the active ones; each new registration for such an
-- asset leaves 'reg|<slug>|<ref>' in Keys.journey_inbox ('jnys:inbox') in this same script,
-- which the journeys' beat drains (journeys sit above people: they cannot be called)
local journey_triggers, journey_inbox = k('jnys', 'triggers'), k('jnys', 'inbox')
local journey_listens = {}
local function journey_entry(asset, ref)
  local listens = journey_listens[asset]
  if listens == nil then
    listens = tonumber(redis.call('HGET', journey_triggers, 'registration:' .. asset) or '0') > 0
    journey_listens[asset] = listens
  end
  if listens then redis.call('RPUSH', journey_inbox, 'reg|' .. asset .. '|' .. ref) end
end
local any_webhook = redis.call('ZCARD', k('whs')) > 0
local report_created = not import and any_webhook
local created_outbox = any_webhook and k('wh', 'outbox', 'lead.created') or nil
local report_touched = redis.call('ZCARD', k('segs')) > 0
local created = {}
local touched = {}
local stream = k('intake')
local assets = k('assets')
local email_lead = k('email', 'lead')
local email_contact = k('email', 'contact')

local known_assets = {}  -- this batch's asset -> lists, so each asset costs one HGET
local function asset_lists(kind, asset)
  local field = kind .. ':' .. asset
  local known = known_assets[field]
  if known then return known[1], known[2] end
  local lead_list, contact_list
  local pair = redis.call('HGET', assets, field)
  if pair then
    local comma = string.find(pair, ',', 1, true)
    lead_list, contact_list = string.sub(pair, 1, comma - 1), string.sub(pair, comma + 1)
  else
    local ln, cn
    lead_list, ln = new_id('list', 'ls')
    contact_list, cn = new_id('list', 'ls')
    local title = (kind == 'event' and 'Event: ' or 'White paper: ') .. asset
    redis.call('HSET', k('list', lead_list), 'name', title .. ' (leads)', 'member_type', 'lead',
      'kind', kind, 'slug', asset, 'parallel', contact_list, 'created_at', now)
    redis.call('HSET', k('list', contact_list), 'name', title .. ' (contacts)', 'member_type',
      'contact', 'kind', kind, 'slug', asset, 'parallel', lead_list, 'created_at', now)
    redis.call('ZADD', k('lists'), ln, lead_list, cn, contact_list)
    redis.call('HSET', assets, field, lead_list .. ',' .. contact_list)
    -- the asset's record, when no one made it before its first registration
    local record = k('asset', asset)
    if redis.call('HSETNX', record, 'kind', kind) == 1 then
      redis.call('HSET', record, 'slug', asset, 'created_at', now)
      redis.call('ZADD', k('assets', 'idx'), 'NX', redis.call('HINCRBY', seq, 'asset', 1), asset)
    end
  end
  known_assets[field] = {lead_list, contact_list}
  return lead_list, contact_list
end

-- the profile fields of a record, to be written in one HSET with the rest: a new non-empty
-- value replaces the old, an empty one never erases (empty values are never sent)
local function has_field(fields, name)
  for f = 1, #fields, 2 do
    if fields[f] == name then return true end
  end
  return false
end

local function append(list, ...)
  for _, value in ipairs({...}) do list[#list + 1] = value end
end

-- results live in one hash per UTC day of acceptance (Keys.registrations), kept
-- keep_seconds after this batch's last write to it
local result_days = {}
local function results_of(rid)
  local day = tostring(math.floor(tonumber(string.sub(rid, 1, string.find(rid, '-', 1, true) - 1))
    / 86400000))
  local key = k('regs', day)
  result_days[key] = true
  return key
end

-- import: whether writing ``fields`` to the hash ``key`` would change any of them (another
-- spelling of the address alone, 'email_given', is not a change: the same person)
local function changes(key, fields)
  if #fields == 0 then return false end
  local names = {}
  for f = 1, #fields, 2 do names[#names + 1] = fields[f] end
  local old = redis.call('HMGET', key, unpack(names))
  for f = 1, #fields, 2 do
    if fields[f] ~= 'email_given' and old[(f + 1) / 2] ~= fields[f + 1] then return true end
  end
  return false
end

-- consent as stored: '1' given, 'p' pending confirmation, '0'/absent none; 'w' withdrawn.
-- A registration's consent never lowers given consent; pending never replaces given.
local function consent_value(old, new)
  if new == '1' then return '1' end
  if new == 'p' and old ~= '1' then return 'p' end
  return nil
end

-- consent evidence: the last 50 changes of a person's consent. An entry is
-- 'at|how|asset|version|ip|ua id|status' and, after a newline, the user agent, which is kept
-- once in a shared hash (ua id -> user agent): many people share a few browsers
local function keep_evidence(ref, person_key, evidence)
  local newline = string.find(evidence, '\n', 1, true)
  if newline then
    local entry = string.sub(evidence, 1, newline - 1)
    local ua = string.sub(evidence, newline + 1)
    local parts = {}
    for part in string.gmatch(entry .. '|', '([^|]*)|') do parts[#parts + 1] = part end
    if parts[6] and parts[6] ~= '' then redis.call('HSETNX', k('consent', 'ua'), parts[6], ua) end
    evidence = entry
  end
  local key = k('consent', ref)
  -- the first entry lives in the person's hash (field 'ce', short enough for its compact
  -- encoding); later ones in the list
  if string.len(evidence) <= 64 and redis.call('EXISTS', key) == 0
      and redis.call('HSETNX', person_key, 'ce', evidence) == 1 then
    return
  end
  redis.call('RPUSH', key, evidence)
  redis.call('LTRIM', key, -50, -1)
end

-- an untrusted record's profile fields for a record sales owns: none is written; those
-- that differ from the stored values (of ``target``) are proposed on ``ref``'s timeline.
-- Returns the fields that may still be written (none of the profile).
local function propose(target, ref, fields, rid, at, email, asset)
  if #fields == 0 then return fields end
  local names = {}
  for f = 1, #fields, 2 do names[#names + 1] = fields[f] end
  local old = redis.call('HMGET', target, unpack(names))
  local proposal, any = {}, false
  for f = 1, #fields, 2 do
    local name, value = fields[f], fields[f + 1]
    if name ~= 'email_given' and name ~= 'topic' and old[(f + 1) / 2] ~= value then
      proposal[name] = value
      any = true
    end
  end
  if any then
    local key = k('audit', ref)
    redis.call('LPUSH', key, cjson.encode({type = 'proposed_update', at = tonumber(at),
      by = email, id = rid, asset = asset, fields = proposal}))
    redis.call('LTRIM', key, 0, 499)
  end
  return {}
end

-- what a registration changed about an existing person, as the segments' readers name it
-- (people/segments/rules.py ``reads``): the hash fields it wrote, then ``extra`` tokens
local function what_changed(fields, extra)
  local out = {}
  for f = 1, #fields, 2 do out[#out + 1] = 'field:' .. fields[f] end
  for _, token in ipairs(extra) do out[#out + 1] = token end
  return table.concat(out, ' ')
end

local acked = {}
local outcomes = {}
local applied = 0
local records = cjson.decode(ARGV[9])
for r = 1, count do
  local record = records[r]
  local rid, email, kind, asset, consent = record[1], record[2], record[3], record[4], record[5]
  local at, source, evidence = record[6], record[7], record[8]
  local trusted = record[9] == '1'
  local fields = record[10]
  acked[#acked + 1] = rid
  local regs = (not import) and results_of(rid)
  if import or redis.call('HEXISTS', regs, rid) == 0 then
    applied = applied + 1
    if email == '' then
      if import then
        outcomes[#outcomes + 1] = 'x'
        outcomes[#outcomes + 1] = kind
      else
        redis.call('HSET', regs, rid, 'x||' .. kind)  -- same three fields: x, no person, reason
      end
    else
      local lead_list, contact_list = asset_lists(kind, asset)
      -- history entries stay short so that a lead with a few registrations keeps Redis's
      -- compact listpack hash encoding (values <= 64 bytes): '<w|e><n>:<base36 time>', where
      -- ls<n> is the asset's lead list (people.py reads the slug from it). Entries written
      -- before were 'w:<asset>:<base36 time>'; both are recognised below.
      local code = (kind == 'event') and 'e' or 'w'
      local asset_code = code .. string.sub(lead_list, 3)
      local entry = asset_code .. ':' .. b36(tonumber(at))
      local contact_id = redis.call('HGET', email_contact, email)
      local new_contact = false
      if not contact_id and as_contacts then
        -- a new contact, as POST /api/v1/contacts makes it; the branch below writes the rest
        local n
        contact_id, n = new_id('contact', 'ct')
        redis.call('HSET', k('contact', contact_id), 'email', email, 'created_at', now,
          'consent', '0')
        redis.call('HSET', email_contact, email, contact_id)
        redis.call('ZADD', k('contacts'), n, contact_id)
        new_contact = true
      end
      if contact_id then
        local ckey = k('contact', contact_id)
        if not trusted then
          fields = propose(ckey, 'contact:' .. contact_id, fields, rid, at, email, asset)
        end
        local known = redis.call('HMGET', ckey, 'regs', 'consent')
        local history = known[1]
        local seen = history and string.find(';' .. history, ';' .. asset_code .. ':', 1, true)
        local c = consent_value(known[2], consent)
        if not c or c == known[2] then evidence = '' end  -- consent unchanged: no evidence
        if c then append(fields, 'consent', c) end
        append(fields, 'latest_source', source)
        local outcome = new_contact and 'c' or 'u'
        local changed = '*'
        if import and seen and redis.call('ZSCORE', k('list', contact_list, 'm'), contact_id) then
          if changes(ckey, fields) then
            append(fields, 'updated_at', now)
            redis.call('HSET', ckey, unpack(fields))
            if not new_contact then changed = what_changed(fields, {}) end
          else
            outcome = 'n'
          end
        else
          append(fields, 'regs', history and (history .. ';' .. entry) or entry, 'updated_at', now)
          redis.call('HSET', ckey, unpack(fields))
          add_member(contact_list, contact_id, ckey)
          if not new_contact then
            changed = what_changed(fields, {'list:' .. contact_list, 'field:lists', 'field:ce'})
          end
        end
        -- while any segment is saved, the person is reported with what changed ('<ref>\t<tokens>')
        local person = 'c:' .. contact_id
        if report_touched then person = person .. '\t' .. changed end
        if evidence ~= '' and outcome ~= 'n' then keep_evidence('c:' .. contact_id, ckey, evidence) end
        if outcome ~= 'n' then journey_entry(asset, 'c:' .. contact_id) end
        if import then
          outcomes[#outcomes + 1] = outcome
          outcomes[#outcomes + 1] = person
        else
          if report_touched then touched[#touched + 1] = person end
          redis.call('HSET', regs, rid, 'c|' .. contact_id .. '|' .. contact_list)
        end
        if report_touched and outcome ~= 'n' then
          redis.call('SADD', k('segs', 'dirty'), 'c:' .. contact_id)
        end
      else
        local lead_id = redis.call('HGET', email_lead, email)
        local outcome = 'u'
        local changed = '*'
        if lead_id then
          local lkey = k('lead', lead_id)
          local known = redis.call('HMGET', lkey, 'regs', 'topic', 'consent', 'source', 'latest_source',
            'status', 'contact_id')
          local history = known[1]
          if not trusted and known[6] == 'qualified' then  -- sales owns it now
            if known[7] then
              fields = propose(k('contact', known[7]), 'contact:' .. known[7], fields, rid, at,
                email, asset)
            else
              fields = propose(lkey, 'lead:' .. lead_id, fields, rid, at, email, asset)
            end
          end
          -- engagement from repeat registrations: a new asset, an event after a white paper
          local gains = {}
          if history then
            local h = ';' .. history
            if not string.find(h, ';' .. asset_code .. ':', 1, true)
                and not string.find(h, ';' .. code .. ':' .. asset .. ':', 1, true) then
              gains[#gains + 1] = {w_repeat, 'registered|' .. kind .. '|' .. asset}
              if kind == 'event' and string.find(h, ';w', 1, true) then
                gains[#gains + 1] = {w_event, 'event_after_white_paper|' .. kind .. '|' .. asset}
              end
            end
          end
          if not known[2] and not has_field(fields, 'topic') then
            append(fields, 'topic', kind .. ': ' .. asset)
          end
          local c = consent_value(known[3], consent)
          if not c or c == known[3] then evidence = '' end
          if c then append(fields, 'consent', c) end
          -- the first source stays (absent: web_form); the latest is kept when it differs
          if known[5] or source ~= (known[4] or 'web_form') then
            append(fields, 'latest_source', source)
          end
          local seen = history and string.find(';' .. history, ';' .. asset_code .. ':', 1, true)
          if import and seen and redis.call('ZSCORE', k('list', lead_list, 'm'), lead_id) then
            -- a re-import of a known registration: only changed fields are written
            if changes(lkey, fields) then
              append(fields, 'updated_at', now)
              redis.call('HSET', lkey, unpack(fields))
              changed = what_changed(fields, {})
            else
              outcome = 'n'
            end
          else
            append(fields, 'regs', history and (history .. ';' .. entry) or entry, 'updated_at', now)
            redis.call('HSET', lkey, unpack(fields))
            for _, g in ipairs(gains) do  -- scaled to the decay epoch (_scoring.lua)
              if g[1] ~= 0 then
                score_add(lkey, lead_id, k('lead', lead_id, 'scored'), k('leads', 'decay'),
                          k('leads', 'score'), k('leads', 'cand'), g[1], at, g[2])
              end
            end
            add_member(lead_list, lead_id, lkey)
            changed = what_changed(fields, {'field:score', 'list:' .. lead_list, 'field:lists',
                                            'field:ce'})
          end
        else
          outcome = 'c'
          -- a new lead: everything in one HSET, and it cannot be on the list yet
          local n
          lead_id, n = new_id('lead', 'ld')
          if not has_field(fields, 'topic') then append(fields, 'topic', kind .. ': ' .. asset) end
          if source ~= 'web_form' then append(fields, 'source', source) end
          redis.call('HSET', k('lead', lead_id), 'email', email, 'status', 'new', 'score', '0',
            'consent', (consent == '1' or consent == 'p') and consent or '0', 'created_at', now,
            'updated_at', now, 'regs', entry, 'lists', lead_list, unpack(fields))
          redis.call('HINCRBY', k('leads', 'by-source'), source, 1)
          redis.call('HSET', email_lead, email, lead_id)
          redis.call('ZADD', k('leads'), n, lead_id)
          redis.call('ZADD', k('list', lead_list, 'm'), redis.call('HINCRBY', seq, 'member', 1), lead_id)
          if report_created then created[#created + 1] = lead_id end
          if created_outbox then redis.call('RPUSH', created_outbox, lead_id) end
        end
        if evidence ~= '' and outcome ~= 'n' then
          keep_evidence('l:' .. lead_id, k('lead', lead_id), evidence)
        end
        if outcome ~= 'n' then journey_entry(asset, 'l:' .. lead_id) end
        local person = 'l:' .. lead_id
        if report_touched then person = person .. '\t' .. changed end
        if import then
          outcomes[#outcomes + 1] = outcome
          outcomes[#outcomes + 1] = person
        else
          if report_touched then touched[#touched + 1] = person end
          redis.call('HSET', regs, rid, 'l|' .. lead_id .. '|' .. lead_list)
        end
        if report_touched and outcome ~= 'n' then
          redis.call('SADD', k('segs', 'dirty'), 'l:' .. lead_id)
        end
      end
    end
  end
end
for key in pairs(result_days) do redis.call('EXPIRE', key, keep_seconds) end
if import then
  if applied > 0 then redis.call('HINCRBY', k('metrics'), 'import_rows_applied', applied) end
  if report_touched then outcomes[#outcomes + 1] = 's' end
  return outcomes
end
if applied > 0 then redis.call('HINCRBY', k('metrics'), 'registrations_processed', applied) end
-- acknowledge in chunks: unpack() of thousands of ids would fail after the writes above
for first = 1, #acked, 500 do
  local last = math.min(first + 499, #acked)
  redis.call('XACK', stream, group, unpack(acked, first, last))
  redis.call('XDEL', stream, unpack(acked, first, last))
end
if report_created or report_touched then
  local reply = {#acked, #created}
  for _, lead_id in ipairs(created) do reply[#reply + 1] = lead_id end
  for _, ref in ipairs(touched) do reply[#reply + 1] = ref end
  return reply
end
return #acked
