// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/QIsleLua>

// Lua's pattern matcher is C: a pattern that backtracks catastrophically
// (`('a'):rep(40):find(('a*'):rep(40) .. 'b')`) would run for ages with no
// hook check, deaf to cancel() and timeouts.
//
// string.find, match, gmatch and gsub are wrapped: when the subject and the
// pattern could be expensive, a probe walks the same search as Lua's matcher
// would, checking for a stop every few thousand steps, before Lua's own
// function runs and produces the results. So results always come from Lua;
// the probe only makes the search interruptible (at the price of running it
// twice, for patterns that can backtrack on long subjects only). A pattern
// the probe cannot follow (malformed, too deep) is left to Lua, which then
// raises its own error at the same point.
namespace PatternGuard {

// Wraps the pattern functions of the string table, if it is open.
void install(lua_State *L);

} // namespace PatternGuard
