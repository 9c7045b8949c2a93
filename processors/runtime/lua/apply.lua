-- Apply one entity's state change, advance its offset fences and store its outbox, atomically.
-- KEYS[1]: the entity's hash (fields: v = version, w = the token of the write that made it,
--          s = state JSON, d = recent event ids JSON,
--          o = outbox: the messages this version produced, not yet published (outbox.py),
--          f:<topic>:<partition> = fence: last applied offset of that source)
-- KEYS[2]: the entity's capped history list (same hash tag, so same cluster slot)
-- KEYS[3]: the entity's parts hash (Processor.parts_of; same hash tag)
-- ARGV[1]: version the change was computed from; ARGV[2]: the token that version must carry
-- ('' = not checked: the change was computed from a read, not from the writer's own cache);
-- ARGV[3]: this write's token; ARGV[4]: new state, encoded (statecodec.py; '' = keep);
-- ARGV[5]: recent event ids JSON ('' = keep); ARGV[6]: history cap;
-- ARGV[7]: outbox ('' = none; the writer has published the outbox it read, so it is replaced);
-- ARGV[8]: n fences; then n (field, offset) pairs; then m = number of parts, m (part, JSON)
-- pairs; then history entries.
-- Returns 1 applied, 0 version moved (recompute), -1 a fence is already at/after the offset.
local current = redis.call('HMGET', KEYS[1], 'v', 'w')
local version = tonumber(current[1] or '0')
if version ~= tonumber(ARGV[1]) then
  return 0
end
if ARGV[2] ~= '' and current[2] ~= ARGV[2] then
  return 0
end
local n = tonumber(ARGV[8])
for i = 0, n - 1 do
  local fence = redis.call('HGET', KEYS[1], ARGV[9 + 2 * i])
  if fence and tonumber(fence) >= tonumber(ARGV[10 + 2 * i]) then
    return -1
  end
end
for i = 0, n - 1 do
  redis.call('HSET', KEYS[1], ARGV[9 + 2 * i], ARGV[10 + 2 * i])
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 's', ARGV[4])
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'd', ARGV[5])
end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'o', ARGV[7])
else
  redis.call('HDEL', KEYS[1], 'o')
end
redis.call('HSET', KEYS[1], 'v', version + 1, 'w', ARGV[3])
local at = 9 + 2 * n
local parts = tonumber(ARGV[at])
for i = 0, parts - 1 do
  redis.call('HSET', KEYS[3], ARGV[at + 1 + 2 * i], ARGV[at + 2 + 2 * i])
end
local first = at + 1 + 2 * parts
if #ARGV >= first then
  for i = first, #ARGV do
    redis.call('RPUSH', KEYS[2], ARGV[i])
  end
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[6]), -1)
end
return 1
