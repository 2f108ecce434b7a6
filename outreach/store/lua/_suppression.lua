-- The one rule of suppression precedence: every writer of the suppressed hash goes through
-- suppress() (bounce.lua and finish_send.lua include this file; people/suppressions.py's
-- suppress() runs suppress.lua). A stronger reason replaces a weaker one, never the reverse:
-- complaint > unsubscribed = erased > manual > bounced. ``info`` ('' for none) replaces the
-- details of the reason it came with. Returns true when the address's reason was written.
local function suppression_rank(value)
  if not value then return 0 end
  if string.sub(value, 1, 8) == 'complain' then return 4 end
  if string.sub(value, 1, 11) == 'unsubscribe' or value == 'erased' then return 3 end
  if string.sub(value, 1, 6) == 'bounce' then return 1 end
  return 2
end

local function suppress(suppressed, infos, email, value, info)
  local current = redis.call('HGET', suppressed, email)
  if current and suppression_rank(current) >= suppression_rank(value) then return false end
  redis.call('HSET', suppressed, email, value)
  if info ~= '' then redis.call('HSET', infos, email, info) else redis.call('HDEL', infos, email) end
  return true
end

-- Lift what a confirmed opt-in outweighs: an unsubscribe or an erasure (rank 3), never a
-- complaint (stronger) and never a bounce or a manual entry (not the person's to lift).
-- ``erased`` is the set of erased address hashes, ``digest`` this address's hash.
-- Returns the lifted value ('' when nothing was lifted).
local function lift_by_consent(suppressed, infos, erased, email, digest)
  local current = redis.call('HGET', suppressed, email)
  local lifted = ''
  if current and suppression_rank(current) == 3 then
    redis.call('HDEL', suppressed, email)
    redis.call('HDEL', infos, email)
    lifted = current
  elseif current then
    return ''
  end
  if redis.call('SREM', erased, digest) == 1 and lifted == '' then lifted = 'erased' end
  return lifted
end
