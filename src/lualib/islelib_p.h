// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/qisle.h>

#include <QIsle/QIsleLua>

// What QIsle adds to a script's world: print -> QIsle::printed, the `isle`
// table (progress, emit, sleep, canceled) and host functions.
namespace IsleLib {

void open(lua_State *L);

// Sets the global (dotted) `name` to a Lua function that runs fn.
void registerHostFunction(lua_State *L, const QString &name, QIsle::HostFunction fn);
// The same for an async host function: the script waits for fn's future.
void registerAsyncHostFunction(lua_State *L, const QString &name, QIsle::AsyncHostFunction fn);

// For a C function on the Lua thread: `return IsleLib::await(L, future);`
// waits for future and pushes result 0 (nil when none); a failure is a
// Callback error, a canceled future an error containing "canceled". Where
// the script cannot yield, a pending future is canceled and "cannot wait
// here" raised; a finished one works anywhere.
int await(lua_State *L, QFuture<QVariant> future);

} // namespace IsleLib
