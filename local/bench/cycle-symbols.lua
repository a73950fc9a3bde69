-- wrk script: cycles through 100 symbols (S0 .. S99), each request the next one. With the
-- in-process cache holding one quote (CACHE_L1_CAPACITY=1) every request misses it and is
-- answered from Redis. Prints the latency row of latency.lua.
dofile("local/bench/latency.lua")
local n = 0
request = function()
  n = (n + 1) % 100
  return wrk.format("GET", "/prices/latest?symbol=S" .. n)
end
