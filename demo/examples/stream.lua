-- A stream of results: each isle.emit() is result 1, 2, ... of the future,
-- shown as it arrives; the return value stays result 0.
local a, b = 0, 1
for i = 1, 40 do
  a, b = b, a + b
  isle.emit(("fib(%d) = %d"):format(i, a))
  isle.progress(i, 40, "fibonacci " .. i)
  isle.sleep(50)
end
return "done"
