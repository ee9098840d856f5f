for i = 1, 3 do isle.emit({i = i}) end return coroutine.wrap(function() coroutine.yield(1) end)()
