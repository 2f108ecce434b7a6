-- Process a batch of registrations from the intake stream, atomically and idempotently:
-- dedupe by normalised email into leads (or attach to a known contact), create the asset's
-- parallel lists on first use, add list memberships, keep history, score repeats, then
-- XACK + XDEL the entries. A registration already in the results hash changes nothing.
--
-- ARGV: 1 key tag, 2 group, 3 now (epoch seconds), 4 repeat weight, 5 event-after-paper weight,
--       6 seconds to keep results, 7 record count, then per record:
--       id, email, kind, asset, consent(0/1), at (epoch seconds), nfields, (field, value) * nfields
-- Records whose email is empty are acknowledged and marked rejected (reason in kind).
--@prelude
local group = ARGV[2]
local now = ARGV[3]
local w_repeat = tonumber(ARGV[4])
local w_event = tonumber(ARGV[5])
local keep_seconds = tonumber(ARGV[6])
local count = tonumber(ARGV[7])
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

local acked = {}
local applied = 0
local i = 8
for _ = 1, count do
  local rid, email, kind, asset, consent = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local at = ARGV[i + 5]
  local nfields = tonumber(ARGV[i + 6])
  local fields = {}
  for f = 1, nfields * 2 do fields[f] = ARGV[i + 6 + f] end
  i = i + 7 + nfields * 2
  acked[#acked + 1] = rid
  local regs = results_of(rid)
  if redis.call('HEXISTS', regs, rid) == 0 then
    applied = applied + 1
    if email == '' then
      redis.call('HSET', regs, rid, 'x||' .. kind)  -- same three fields: x, no person, reason
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
      if contact_id then
        local ckey = k('contact', contact_id)
        local history = redis.call('HGET', ckey, 'regs')
        append(fields, 'regs', history and (history .. ';' .. entry) or entry, 'updated_at', now)
        if consent == '1' then append(fields, 'consent', '1') end
        redis.call('HSET', ckey, unpack(fields))
        add_member(contact_list, contact_id, ckey)
        redis.call('HSET', regs, rid, 'c|' .. contact_id .. '|' .. contact_list)
      else
        local lead_id = redis.call('HGET', email_lead, email)
        if lead_id then
          local lkey = k('lead', lead_id)
          local known = redis.call('HMGET', lkey, 'regs', 'topic')
          local history = known[1]
          -- engagement from repeat registrations: a new asset, an event after a white paper
          local gain = 0
          if history then
            local h = ';' .. history
            if not string.find(h, ';' .. asset_code .. ':', 1, true)
                and not string.find(h, ';' .. code .. ':' .. asset .. ':', 1, true) then
              gain = gain + w_repeat
              if kind == 'event' and string.find(h, ';w', 1, true) then
                gain = gain + w_event
              end
            end
          end
          if not known[2] and not has_field(fields, 'topic') then
            append(fields, 'topic', kind .. ': ' .. asset)
          end
          if consent == '1' then append(fields, 'consent', '1') end
          append(fields, 'regs', history and (history .. ';' .. entry) or entry, 'updated_at', now)
          redis.call('HSET', lkey, unpack(fields))
          if gain > 0 then
            local score = redis.call('HINCRBY', lkey, 'score', gain)
            redis.call('ZADD', k('leads', 'score'), score, lead_id)
          end
          add_member(lead_list, lead_id, lkey)
        else
          -- a new lead: everything in one HSET, and it cannot be on the list yet
          local n
          lead_id, n = new_id('lead', 'ld')
          if not has_field(fields, 'topic') then append(fields, 'topic', kind .. ': ' .. asset) end
          redis.call('HSET', k('lead', lead_id), 'email', email, 'status', 'new', 'score', '0',
            'consent', consent == '1' and '1' or '0', 'created_at', now, 'updated_at', now,
            'regs', entry, 'lists', lead_list, unpack(fields))
          redis.call('HSET', email_lead, email, lead_id)
          redis.call('ZADD', k('leads'), n, lead_id)
          redis.call('ZADD', k('list', lead_list, 'm'), redis.call('HINCRBY', seq, 'member', 1), lead_id)
        end
        redis.call('HSET', regs, rid, 'l|' .. lead_id .. '|' .. lead_list)
      end
    end
  end
end
for key in pairs(result_days) do redis.call('EXPIRE', key, keep_seconds) end
if applied > 0 then redis.call('HINCRBY', k('metrics'), 'registrations_processed', applied) end
-- acknowledge in chunks: unpack() of thousands of ids would fail after the writes above
for first = 1, #acked, 500 do
  local last = math.min(first + 499, #acked)
  redis.call('XACK', stream, group, unpack(acked, first, last))
  redis.call('XDEL', stream, unpack(acked, first, last))
end
return #acked
