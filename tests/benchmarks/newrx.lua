-- wrk script: POST distinct NewRx messages (a unique MessageID per request).
-- usage: wrk -s newrx.lua URL -- TEMPLATE_FILE TOKEN RUN_TAG
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  template = f:read("*a")
  f:close()
  headers = {["Content-Type"] = "application/xml"}
  if args[2] and args[2] ~= "" then headers["Authorization"] = "Bearer " .. args[2] end
  prefix = (args[3] or "run") .. "-" .. tostring(tid or 0) .. "-"
  counter = 0
end

function request()
  counter = counter + 1
  local body = template:gsub("DEMO%-MESSAGE%-ID", prefix .. counter)
  return wrk.format("POST", "/ncpdp/script", headers, body)
end
