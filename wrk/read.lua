-- wrk script: GET one goods, as the shopper page polls it (V9's reads).
--
--   GOODS_ID=1 wrk -t2 -c64 -d10s -s wrk/read.lua http://127.0.0.1:8080
--
-- GOODS_ID  goods to read (required)
--
-- done() prints the responses by status, summed over the threads, as one line:
--   reads: ok=<200s> other=<anything else>

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local goods_id = tonumber(os.getenv("GOODS_ID") or "")
  if not goods_id then
    error("set GOODS_ID to the id of the goods to read")
  end
  req = wrk.format("GET", "/goods/" .. goods_id)
  ok, other = 0, 0
end

function request()
  return req
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local o, x = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    x = x + t:get("other")
  end
  io.write(string.format("reads: ok=%d other=%d\n", o, x))
end
