-- wrk script for scripts/bench-serve: each request posts one sequence-numbered inference-log
-- event. With WRK_DELAY_MS set, each connection waits a random 0..2*WRK_DELAY_MS ms after each
-- answer (so 64 connections at 64 ms make about 1,000 requests/s, spread out rather than in
-- bursts); without it, connections send as fast as they are answered.
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args) n = id * 100000000 end
local d = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if d > 0 then function delay() return math.random(0, 2 * d) end end
function request()
  n = n + 1
  local body = string.format('{"log_id":"seq-%d","seq":%d,"timestamp":"2026-12-01T10:00:00Z","user_id":"u-%d","session_id":"s-%d","input_tokens":%d,"output_tokens":%d,"model_id":"m-1"}',
    n, n, n % 50, n % 200, 10 + n % 90, 100 + n % 400)
  return wrk.format("POST", "/", {["Content-Type"] = "application/json"}, body)
end
