// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "async/coroutines_p.h"

#include "async/scheduler_p.h"
#include "luautil/stackguard_p.h"

namespace {

// lcorolib.c's getco.
lua_State *getco(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "thread");
    return co;
}

enum Status { Running, Suspended, Normal, Dead };
const char *const statusNames[] = {"running", "suspended", "normal", "dead"};

// lcorolib.c's auxstatus, plus: a fiber's own thread (another request's or
// task's) and a script coroutine suspended in a wait are "normal": they are
// not the script's to resume or close.
Status statusOf(lua_State *L, lua_State *co)
{
    if (L == co)
        return Running;
    if (Scheduler::from(L).isHeld(co))
        return Normal;
    switch (lua_status(co)) {
    case LUA_YIELD:
        return Suspended;
    case LUA_OK: {
        lua_Debug ar;
        if (lua_getstack(co, 0, &ar))
            return Normal; // it has frames: it is running
        return lua_gettop(co) == 0 ? Dead : Suspended; // initial state
    }
    default:
        return Dead; // an error ended it
    }
}

// coroutine.running(): a request's (or task's) own thread is its main
// thread, as the main chunk's is under the plain interpreter.
int running(lua_State *L)
{
    const bool isMain = lua_pushthread(L) == 1 || Scheduler::from(L).isFiberThread(L);
    lua_pushboolean(L, isMain);
    return 2;
}

int isyieldable(lua_State *L)
{
    lua_State *co = lua_isnone(L, 1) ? L : getco(L);
    lua_pushboolean(L, lua_isyieldable(co) && !Scheduler::from(L).isFiberThread(co));
    return 1;
}

// coroutine.yield(...): at a request's top level, Lua's message for the main
// chunk (the fiber could yield, but that yield is the runtime's).
int yield(lua_State *L)
{
    if (Scheduler::from(L).isFiberThread(L)) {
        lua_pushliteral(L, "attempt to yield from outside a coroutine");
        return lua_error(L);
    }
    return lua_yield(L, lua_gettop(L));
}

int status(lua_State *L)
{
    lua_State *co = getco(L);
    lua_pushstring(L, statusNames[statusOf(L, co)]);
    return 1;
}

} // namespace

void AsyncCoroutines::install(lua_State *L)
{
    StackGuard guard(L);
    if (lua_getglobal(L, LUA_COLIBNAME) == LUA_TTABLE) {
        static const luaL_Reg functions[] = {
            {"running", running}, {"isyieldable", isyieldable}, {"yield", yield},
            {"status", status},   {nullptr, nullptr},
        };
        luaL_setfuncs(L, functions, 0);
    }
    lua_pop(L, 1);
}
