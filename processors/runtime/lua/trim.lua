-- Trim an entity's outbox once its messages are published: only if the version is still the one
-- whose outbox was published (a newer write replaced the outbox, and its writer publishes that one).
-- KEYS[1]: the entity's hash; ARGV[1]: the version whose outbox was published.
-- Returns 1 trimmed, 0 the version moved on (nothing to do).
if tonumber(redis.call('HGET', KEYS[1], 'v') or '0') ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HDEL', KEYS[1], 'o')
return 1
