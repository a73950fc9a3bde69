-- wrk script: prints one Markdown table row per run: requests/s, p50, p99, p99.9 (ms).
-- LABEL names the row.
function done(summary, latency, requests)
  local label = os.getenv("LABEL") or "run"
  local rps = summary.requests / (summary.duration / 1e6)
  io.write(string.format("| %s | %.0f | %.2f | %.2f | %.2f | %d |\n", label, rps,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
