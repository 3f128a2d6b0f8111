-- wrk script for scripts/bench-serve's reference run: GET requests, each connection waiting a
-- random 0..2*WRK_DELAY_MS ms after each answer, as scripts/wrk-post.lua paces its POSTs.
local d = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if d > 0 then function delay() return math.random(0, 2 * d) end end
