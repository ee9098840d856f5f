-- A script with an error on line 7: the editor marks the line, the errors
-- view shows the message and the traceback.
local function average(list)
  local sum = 0
  for _, v in ipairs(list) do
    -- the third item is a number, not a table: indexing it fails here
    sum = sum + v.value
  end
  return sum / #list
end
return average({ { value = 1 }, { value = 2 }, 3 })
