local ch, b = isle.channel(), isle.channel(2)
isle.spawn(function() for i = 1, 5 do ch:send(i) end ch:close() end)
b:try_send('x') b:send(nil)
local got = {}
for v in function() local v, ok = ch:recv() if ok then return v end end do got[#got + 1] = v end
b:close()
local i, v, ok = isle.select({b, ch}, 1)
return {got, b:len(), b:cap(), i, v, ok, ch:try_recv(), b:try_send(1), isle.select({isle.channel()}, 0)}
