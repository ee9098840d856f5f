#!/usr/bin/env lua5.4
return debug.getinfo(1, "l").currentline
