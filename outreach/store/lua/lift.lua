-- Lift one address's suppression by a confirmed opt-in (people/suppressions.py: lift), by the
-- one precedence rule (_suppression.lua): an unsubscribe or an erasure is lifted, a
-- complaint, a bounce or a manual suppression stays.
-- KEYS: 1 suppressed hash, 2 suppression info hash, 3 erased hashes set
-- ARGV: 1 email, 2 the address's hash
-- Returns the lifted value, '' when nothing was lifted.
--@suppression
return lift_by_consent(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
