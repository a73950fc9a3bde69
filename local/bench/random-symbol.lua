-- wrk script: every request asks for a symbol unlikely to be cached (a miss), so each one
-- goes to the provider, stores a raw row and publishes an event.
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/prices/latest?symbol=B" .. math.random(1, 100000000))
end
