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
