local t = {}
return t.a.b
