-- Suppress one address (people/suppressions.py: suppress), by the one precedence rule.
-- KEYS: 1 suppressed hash, 2 suppression info hash
-- ARGV: 1 email, 2 value (unsubscribed | bounced[:<campaign>] | complaint | manual), 3 info JSON or ''
-- Returns 1 when the address's reason was written, 0 when a reason as strong stays.
--@suppression
return suppress(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]) and 1 or 0
