// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/QIsleLua>

// pcall, xpcall, coroutine.resume, coroutine.wrap and coroutine.close as Lua
// 5.4's own (lbaselib.c, lcorolib.c: same results, same messages, same error
// objects), except that a stop of the running request (cancel, timeout) is
// never caught: they raise it again at once, and it travels through
// coroutines. A message handler given to xpcall is not run while a stop is
// raised (the hook raises it with hooks off, where a handler that loops could
// never be stopped); it runs one C level below where Lua would run it, the
// one visible difference (debug.getinfo, error levels, tracebacks from a
// handler written in Lua; debug.traceback itself as the handler gives Lua's
// text).
//
// resume and wrap also pass a runtime yield on (a wait inside a script's
// coroutine suspends the whole request, invisibly to the script: see
// async/scheduler_p.h), and refuse coroutines the runtime holds.
//
// Uses only StopControl's and Scheduler's public interfaces. Lua thread only.
namespace StopAwareLib {

// Replaces those of the five functions that the opened libraries define.
void install(lua_State *L);

// lua_resetthread(co) for code running on L (coroutine.close, wrap): co's
// __close handlers run under a protected call of Lua's own, so they run with
// the stop signal armed on co, and a stop raised in them is raised again on
// L. Otherwise returns lua_resetthread's status (not LUA_OK: the error object
// is on co's stack).
int resetThread(lua_State *L, lua_State *co);

} // namespace StopAwareLib
