-- wrk script for local/bench/floor.sh: prints one line,
--   figures <requests/s> <p50 µs> <p99 µs> <p99.9 µs> <errors>
-- WRK_BASE names a wrk script to load first for its request function (random-symbol.lua);
-- its own `done` is replaced by this one.
local base = os.getenv("WRK_BASE")
if base and base ~= "" then
  dofile(base)
end

function done(summary, latency, requests)
  local rps = summary.requests / (summary.duration / 1e6)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("figures %.0f %d %d %d %d\n", rps, latency:percentile(50),
    latency:percentile(99), latency:percentile(99.9), errors))
end
