// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/QIsleLua>

// coroutine.running, isyieldable, yield and status as Lua 5.4's own
// (lcorolib.c), for scripts that run as fibers: a request's (or task's) top
// level behaves as Lua's main chunk -- running() gives its own thread and
// true, isyieldable() false, a bare yield() raises "attempt to yield from
// outside a coroutine" -- and a coroutine the runtime holds (another fiber's
// thread, a script coroutine suspended in a wait) is "normal". resume, wrap
// and close live in lualib/stopawarelib.cpp (they pass runtime yields on and
// refuse such coroutines).
//
// Lua thread only.
namespace AsyncCoroutines {

// Replaces the four functions in the coroutine table, if it is open.
void install(lua_State *L);

} // namespace AsyncCoroutines
