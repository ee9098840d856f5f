// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/qislelua.h>

class Scheduler;
class StopControl;
class Worker;

// What any coroutine of an isle's VM reaches at zero lookup cost: Lua's extra
// space of every thread of the state holds a pointer to it. Each layer reads
// only its own part (the stop machinery its StopControl, never the Worker),
// so no layer below the isle depends on it. Lua thread only.
struct StateContext
{
    Worker *worker = nullptr;
    StopControl *stop = nullptr;
    Scheduler *scheduler = nullptr; // async/: waits

    static StateContext *of(lua_State *L) { return *static_cast<StateContext **>(lua_getextraspace(L)); }
    void attach(lua_State *L) { *static_cast<StateContext **>(lua_getextraspace(L)) = this; }
};
