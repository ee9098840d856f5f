-- An infinite loop: press Stop (or Pause). The VM survives and keeps `spins`;
-- ask the console below for `spins` afterwards.
spins = 0
while true do
  spins = spins + 1
  if spins % 100000 == 0 then isle.progress(spins // 100000, nil, "spinning") end
end
