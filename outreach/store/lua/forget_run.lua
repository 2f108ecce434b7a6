-- A send run is over: forget it as the batch's worker, unless another run took the batch.
-- KEYS: 1 batch runs hash; ARGV: 1 batch number, 2 run id
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
