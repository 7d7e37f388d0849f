-- wrk script for the mrkv kvserver: POSTs /v1/get or /v1/put JSON bodies over a key space.
-- Usage: wrk ... -s kv.lua URL -- OP KEYS VALUE_SIZE   (OP get|put; defaults get 1000 16)
-- The requests are formatted once in init() and cycled, so wrk spends no time building them.
local requests, n, i = {}, 0, 0

function init(args)
  local op = args[1] or "get"
  local keys = tonumber(args[2] or "1000")
  local size = tonumber(args[3] or "16")
  local value = string.rep("v", size)
  local headers = { ["Host"] = wrk.host .. ":" .. wrk.port, ["Content-Type"] = "application/json" }
  -- Each thread gets its own Lua state, seeded apart, so threads do not walk the keys in step.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  n = math.min(keys, 4096)
  for k = 1, n do
    local key = "key:" .. math.random(0, keys - 1)
    local body
    if op == "put" then
      body = '{"key":"' .. key .. '","value":"' .. value .. '"}'
    else
      body = '{"key":"' .. key .. '"}'
    end
    requests[k] = wrk.format("POST", "/v1/" .. op, headers, body)
  end
end

function request()
  i = i % n + 1
  return requests[i]
end
