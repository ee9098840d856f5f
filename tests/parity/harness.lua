-- Shared by the parity cases (loaded with dofile from the cases folder).
-- Everything is printed in a form that cannot differ by chance between two
-- runs: no addresses, strings quoted with %q, numbers with their subtype.
local H = {}

function H.show(v)
  local t = type(v)
  if t == "string" then return (string.format("%q", v)) end
  if t == "number" then return math.type(v) .. " " .. tostring(v) end
  if t == "table" then
    local tag = rawget(v, "tag")
    return tag ~= nil and ("table<" .. tostring(tag) .. ">") or "table"
  end
  if t == "function" or t == "thread" or t == "userdata" then return t end
  return tostring(v) -- nil, boolean
end

-- "label: <count> [v1, v2, ...]"
function H.out(label, ...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = H.show((select(i, ...))) end
  print(label .. ": " .. n .. " [" .. table.concat(parts, ", ") .. "]")
end

-- Runs f(...) protected and prints what pcall gives: one case never stops
-- the next.
function H.case(label, f, ...)
  H.out(label, pcall(f, ...))
end

return H
