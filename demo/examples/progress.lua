-- A long computation that reports its progress: primes below a bound.
-- Try Pause/Resume and Stop while it runs.
local limit = 200000
local count = 0
for n = 2, limit do
  local prime = true
  for d = 2, math.floor(math.sqrt(n)) do
    if n % d == 0 then prime = false break end
  end
  if prime then count = count + 1 end
  if n % 1000 == 0 then
    isle.progress(n, limit, ("%d primes so far"):format(count))
    isle.sleep(5) -- slow enough to watch
  end
end
print("primes below " .. limit .. ": " .. count)
return count
