--@prelude
-- Add a list id to a person's own list of lists (field 'lists'), atomically.
-- KEYS: 1 person hash; ARGV: 1 key tag, 2 list id
remember_list(KEYS[1], ARGV[2])
return 1
