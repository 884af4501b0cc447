-- wrk -s bench/wrk/report.lua: print one machine-readable line at the end.
-- Defines only done(), so wrk keeps its fast path (no per-request Lua).
-- Latencies are wrk's own figures in microseconds (after wrk's stats_correct()).
done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%.1f,"mean":%.3f,"stdev":%.3f,"max":%.1f,' ..
      '"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
