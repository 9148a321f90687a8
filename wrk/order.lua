-- wrk script: POST one-unit orders with a random user per request.
--
--   WRK_PATH=/orderV2 GOODS_ID=1 wrk -t2 -c64 -d10s -s wrk/order.lua http://127.0.0.1:8080
--
-- WRK_PATH  order path (default: the path of the URL given to wrk)
-- GOODS_ID  goods to buy (required)
--
-- done() prints the responses by status, summed over the threads, as one line:
--   orders: created=<201s, and 202s of async accept> sold_out=<409s> other=<anything else>

local threads = {}

-- setup runs in the main thread once per wrk thread: number the threads so
-- each one seeds its own random sequence, and keep them for done().
function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

-- init runs inside each thread.
function init(args)
  path = os.getenv("WRK_PATH") or wrk.path
  goods_id = tonumber(os.getenv("GOODS_ID") or "")
  if not goods_id then
    error("set GOODS_ID to the id of the goods to order")
  end
  math.randomseed(os.time() * 1000 + thread_id)
  headers = { ["Content-Type"] = "application/json" }
  created, sold_out, other = 0, 0, 0
end

-- request builds every request: a user id drawn from a wide range, so
-- repeated users are rare, coming from an address of its own
-- (X-Forwarded-For, which an instance trusts from limits.trusted_proxies),
-- so that a limited version (V8) pays for its checks rather than refusing
-- the one address wrk has.
function request()
  local user = math.random(1, 2000000000)
  local body = string.format('{"user_id":%d,"goods_id":%d,"number":1}', user, goods_id)
  headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
    math.floor(user / 65536) % 256, math.floor(user / 256) % 256, user % 256)
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status == 201 or status == 202 then
    created = created + 1
  elseif status == 409 then
    sold_out = sold_out + 1
  else
    other = other + 1
  end
end

-- done runs in the main thread after the test; read each thread's counters.
function done(summary, latency, requests)
  local c, s, o = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    s = s + t:get("sold_out")
    o = o + t:get("other")
  end
  io.write(string.format("orders: created=%d sold_out=%d other=%d\n", c, s, o))
end
