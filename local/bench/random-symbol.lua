-- wrk script: every request asks for a symbol not asked for before (a miss), so each one goes
-- to the provider, stores a raw row and publishes an event. Each wrk thread has its own seed:
-- with a shared one, the threads would ask for the same symbols and hit each other's cache.
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(os.time() * 100 + id)
end

request = function()
  return wrk.format("GET", "/prices/latest?symbol=B" .. math.random(1, 2000000000))
end

dofile("local/bench/latency.lua")
