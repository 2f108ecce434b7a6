-- Record the outcome of a claimed recipient. Only a 'sending' entry changes (compare-and-set).
-- KEYS: 1 campaign hash, 2 ledger hash, 3 'sending' zset, 4 suppressed hash,
--       5 recipient errors hash, 6 soft-refusal counts hash, 7 breaker streak set,
--       8 suppression info hash, 9 outstanding batches hash, 10 claims hash,
--       11 sent-per-10-seconds hash (bucket start -> messages sent: the send-rate chart),
--       12 receiving domains zset (domain -> messages sent: the report's domains),
--       13 experiment variants hash (address -> variant), 14 report hash (v|<variant>|s:
--       people sent each variant of an experiment), 15 Keys.segment_dirty
-- ARGV: 1 email, 2 outcome (sent | failed | requeue | soft | unknown), 3 now,
--       4 suppression reason for failed ('' = do not suppress), 5 error (reply or reason),
--       6 breaker kind ('' = this outcome says nothing about the relay's attitude),
--       7 breaker threshold, 8 soft limit, 9 suppression info (JSON),
--       10 batch key prefix, 11 this campaign's bounce reason, 12 pause reason,
--       13 the run holding the claim ('' = do not check), 14 '1': a saved segment reads
--       this campaign's sends, so a 'sent' marks the person in KEYS[15] (the caller clears
--       the mark once it has re-evaluated them; the beat settles what a killed worker left)
-- Returns 0 (not claimed), 1 (recorded), 2 (recorded; the breaker tripped and paused the
-- campaign), 3 (a soft refusal too many: recorded as failed).
--@suppression
local email, outcome, now, kind = ARGV[1], ARGV[2], ARGV[3], ARGV[6]
local entry = redis.call('HGET', KEYS[2], email)
if not entry then return 0 end
local held = string.sub(entry, 1, 1)
if held ~= 's' and held ~= 'd' then return 0 end
if (ARGV[13] or '') ~= '' and redis.call('HGET', KEYS[10], email) ~= ARGV[13] then return 0 end
redis.call('HDEL', KEYS[10], email)
local bar = string.find(entry, '|', 3, true)
local ref = string.sub(entry, 3, bar - 1)
redis.call('ZREM', KEYS[3], email)
local result = 1
if outcome == 'failed' and kind ~= '' and redis.call('HGET', KEYS[1], 'tripped_kind') == kind then
  -- the same answer that tripped the breaker, from a transaction still in flight: theirs neither
  outcome = 'requeue'
  kind = ''
end
if outcome == 'soft' then
  if redis.call('HINCRBY', KEYS[6], email, 1) >= tonumber(ARGV[8]) then
    outcome = 'failed'
    result = 3
  else
    outcome = 'requeue'
  end
end
if outcome == 'sent' then
  redis.call('HSET', KEYS[2], email, 'S|' .. ref .. '|' .. now)
  if ARGV[14] == '1' and KEYS[15] then redis.call('SADD', KEYS[15], ref) end
  redis.call('HINCRBY', KEYS[1], 'sent', 1)
  local t = math.floor(tonumber(now))
  redis.call('HINCRBY', KEYS[11], tostring(t - t % 10), 1)
  local domain = string.match(email, '@([^@]+)$')
  if domain then redis.call('ZINCRBY', KEYS[12], 1, domain) end
  if redis.call('HEXISTS', KEYS[1], 'x_status') == 1 then  -- an experiment: count its variant
    local variant = redis.call('HGET', KEYS[13], email) or redis.call('HGET', KEYS[1], 'x_rest') or 'A'
    redis.call('HINCRBY', KEYS[14], 'v|' .. variant .. '|s', 1)
  end
  redis.call('HSET', KEYS[1], 'consecutive_failures', 0)
  if redis.call('HDEL', KEYS[1], 'streak_kind') == 1 then redis.call('DEL', KEYS[7]) end
  if redis.call('HDEL', KEYS[6], email) == 1 then redis.call('HDEL', KEYS[5], email) end
  return 1
elseif outcome == 'failed' then
  redis.call('HSET', KEYS[2], email, 'f|' .. ref .. '|' .. now)
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
  if ARGV[4] ~= '' then suppress(KEYS[4], KEYS[8], email, ARGV[4], ARGV[9]) end
elseif outcome == 'unknown' then
  redis.call('HSET', KEYS[2], email, 'u|' .. ref .. '|' .. now)
  redis.call('HINCRBY', KEYS[1], 'unknown', 1)
else
  redis.call('HSET', KEYS[2], email, 'q|' .. ref .. '|')
end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[5], email, ARGV[5]) end
if kind == '' then return result end
-- the circuit breaker: distinct recipients refused in a row with the same kind of answer
if redis.call('HGET', KEYS[1], 'streak_kind') ~= kind then
  redis.call('DEL', KEYS[7])
  redis.call('HSET', KEYS[1], 'streak_kind', kind)
end
redis.call('SADD', KEYS[7], email)
if redis.call('SCARD', KEYS[7]) < tonumber(ARGV[7]) then return result end
-- tripped: that is the relay's answer, not theirs. Every recipient of the streak goes back
-- to the queue (in a batch of its own, sent on resume) and loses this campaign's bounce
-- suppression; the campaign pauses with the answer as its reason.
local victims = redis.call('SMEMBERS', KEYS[7])
local batch_no = redis.call('HINCRBY', KEYS[1], 'batch_seq', 1)
local batch = ARGV[10] .. batch_no
local requeued = 0
for _, victim in ipairs(victims) do
  local e = redis.call('HGET', KEYS[2], victim)
  if e and string.sub(e, 1, 1) == 'f' then
    local b = string.find(e, '|', 3, true)
    redis.call('HSET', KEYS[2], victim, 'q|' .. string.sub(e, 3, b - 1) .. '|')
    redis.call('HINCRBY', KEYS[1], 'failed', -1)
    redis.call('HDEL', KEYS[5], victim)
    redis.call('HDEL', KEYS[6], victim)
    if redis.call('HGET', KEYS[4], victim) == ARGV[11] then
      redis.call('HDEL', KEYS[4], victim)
      redis.call('HDEL', KEYS[8], victim)
    end
    redis.call('RPUSH', batch, victim)
    requeued = requeued + 1
  end
end
if requeued > 0 then redis.call('HSET', KEYS[9], tostring(batch_no), math.floor(tonumber(now))) end
redis.call('DEL', KEYS[7])
redis.call('HDEL', KEYS[1], 'streak_kind')
if redis.call('HGET', KEYS[1], 'status') == 'sending' then
  redis.call('HSET', KEYS[1], 'status', 'paused', 'status_reason', ARGV[12])
end
redis.call('HSET', KEYS[1], 'tripped_kind', kind)
return 2
