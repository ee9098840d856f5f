// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "lualib/stopawarelib_p.h"

#include "async/scheduler_p.h"
#include "luautil/stackguard_p.h"
#include "stop/stopcontrol_p.h"

#include <atomic>

namespace {

// Lua's debug.traceback (the same C function in every VM of the process), to
// run it as a message handler exactly as Lua would.
std::atomic<lua_CFunction> luaTraceback{nullptr};

// pcall/xpcall continuation, as lbaselib.c's finishpcall, plus: a stop is
// never swallowed, it is raised again at once.
int finishProtectedCall(lua_State *L, int status, lua_KContext extra)
{
    if (status != LUA_OK && status != LUA_YIELD) {
        if (StopControl::from(L).stopping())
            lua_error(L); // the stop's error value is on top
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - int(extra);
}

int pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    const int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finishProtectedCall);
    return finishProtectedCall(L, status, 0);
}

// debug.traceback run as the message handler (db_traceback with its one
// argument): levels count from this function, which stands where Lua's
// traceback would, so the text is Lua's.
int traceback(lua_State *L)
{
    lua_State *L1 = L;
    int arg = 0;
    if (lua_type(L, 1) == LUA_TTHREAD) {
        L1 = lua_tothread(L, 1);
        arg = 1;
    }
    const char *message = lua_tostring(L, arg + 1);
    if (!message && !lua_isnoneornil(L, arg + 1))
        lua_pushvalue(L, arg + 1); // a non-string error object, untouched
    else
        luaL_traceback(L, L1, message, L == L1 ? 1 : 0);
    return 1;
}

// The message handler xpcall installs around the script's (upvalue 1). An
// error raised by the hook runs the message handler with hooks off, so a
// handler that loops could never be stopped: skip it while a stop is raised.
int guardedMessageHandler(lua_State *L)
{
    if (StopControl::from(L).stopping())
        return 1;
    const lua_CFunction original = luaTraceback.load(std::memory_order_relaxed);
    if (original && lua_tocfunction(L, lua_upvalueindex(1)) == original) {
        lua_settop(L, 1);
        return traceback(L);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

int xpcall(lua_State *L)
{
    const int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guardedMessageHandler, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2);
    const int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finishProtectedCall);
    return finishProtectedCall(L, status, 2);
}

// resumeFrom's answer when co passed a runtime yield on: the resumer must
// yield too (see passYield).
constexpr int RuntimeYield = -2;

// lcorolib.c's auxresume: the results (or the error object) of resuming co
// with the top narg values of L, moved to L; -1 on error. Lua's own
// lua_resume refuses a running, normal or dead coroutine with its messages;
// a coroutine the runtime holds (a request's or task's own thread, a
// coroutine suspended in a wait) is refused as a normal one.
// The stop signal must arm the coroutine that runs (RunningScope); a stop
// raised inside it comes back as an error, which the callers raise again.
// A wait inside co (async/: an awaited future, isle.sleep, ...) comes back as
// RuntimeYield: the wait suspends the whole request, so the resumer passes
// the yield on, and resumes co again when the wait ended.
int resumeFrom(lua_State *L, lua_State *co, int narg)
{
    Scheduler &scheduler = Scheduler::from(L);
    if (co != L && scheduler.isHeld(co)) {
        lua_pop(L, narg);
        lua_pushliteral(L, "cannot resume non-suspended coroutine");
        return -1;
    }
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    lua_xmove(L, co, narg);
    int nresults = 0;
    int status;
    {
        RunningScope running(co);
        struct Frame // the coroutine stack of the running fiber (canWait)
        {
            Frame(Scheduler &s, lua_State *from, lua_State *co) : s(s), co(co) { s.enter(from, co); }
            ~Frame() { s.leave(co); }
            Scheduler &s;
            lua_State *co;
        } frame(scheduler, L, co);
        status = lua_resume(co, L, narg, &nresults);
    }
    if (status == LUA_YIELD && scheduler.runtimeYieldPending()) {
        lua_pop(co, nresults); // nothing: runtime yields carry no values
        scheduler.noteParked(co);
        return RuntimeYield;
    }
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nresults + 1)) {
            lua_pop(co, nresults);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nresults);
        return nresults;
    }
    lua_xmove(co, L, 1); // the error object
    return -1;
}

// A stop came back from co: close co's pending to-be-closed variables (it
// died with the stop), then raise the stop here.
[[noreturn]] void raiseStopFrom(lua_State *L, lua_State *co)
{
    const int status = lua_status(co);
    if (status != LUA_OK && status != LUA_YIELD)
        StopAwareLib::resetThread(L, co); // raises the stop itself
    StopControl::from(L).raiseStop(L);
}

int finishResume(lua_State *L, int r);

// coroutine.resume's continuation after a runtime yield passed through it:
// the wait ended, co (argument 1) goes on.
int resumeAgain(lua_State *L, int, lua_KContext)
{
    return finishResume(L, resumeFrom(L, lua_tothread(L, 1), 0));
}

int finishResume(lua_State *L, int r)
{
    if (r == RuntimeYield)
        return Scheduler::from(L).yield(L, resumeAgain, 0);
    StopControl &stop = StopControl::from(L);
    if (stop.stopping())
        raiseStopFrom(L, lua_tothread(L, 1));
    stop.checkpoint(L); // a stop that arrived while the coroutine ran
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

// coroutine.resume(co, ...), as lcorolib.c's luaB_coresume.
int resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "thread");
    return finishResume(L, resumeFrom(L, co, lua_gettop(L) - 1));
}

int finishWrapped(lua_State *L, int r);

int resumeWrappedAgain(lua_State *L, int, lua_KContext)
{
    return finishWrapped(L, resumeFrom(L, lua_tothread(L, lua_upvalueindex(1)), 0));
}

// coroutine.wrap's function, as lcorolib.c's auxwrap. Upvalue 1: the
// coroutine. A coroutine is reset (its to-be-closed variables closed) only
// when it died with an error, and only after that error was moved out.
int resumeWrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    return finishWrapped(L, resumeFrom(L, co, lua_gettop(L)));
}

int finishWrapped(lua_State *L, int r)
{
    if (r == RuntimeYield)
        return Scheduler::from(L).yield(L, resumeWrappedAgain, 0);
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    if (r >= 0) {
        StopControl::from(L).checkpoint(L); // a stop that arrived while the coroutine ran
        return r;
    }
    StopControl &stop = StopControl::from(L);
    if (stop.stopping())
        raiseStopFrom(L, co);
    int status = lua_status(co);
    if (status != LUA_OK && status != LUA_YIELD) {    // it died with an error
        status = StopAwareLib::resetThread(L, co); // close its to-be-closed variables
        lua_xmove(co, L, 1);                       // the error object, possibly a __close's
    }
    if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

// coroutine.wrap(f), as lcorolib.c's luaB_cowrap.
int wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, resumeWrapped, 1);
    return 1;
}

// Lua's coroutine.close (the same C function in every VM of the process).
std::atomic<lua_CFunction> luaClose{nullptr};

// coroutine.close(co): Lua's, run in this frame (its messages name this
// function), under resetThread's rules: it resets co with lua_resetthread.
int close(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    // A coroutine the runtime holds (a fiber's thread, one suspended in a
    // wait) is "normal" (async/coroutines.cpp): Lua's message for it.
    if (co && co != L && Scheduler::from(L).isHeld(co))
        return luaL_error(L, "cannot close a %s coroutine", "normal");
    int results;
    {
        RunningScope running(co ? co : L);
        results = luaClose.load(std::memory_order_relaxed)(L);
    }
    StopControl &stop = StopControl::from(L);
    if (stop.stopping())
        stop.raiseStop(L);
    return results;
}

// Replaces table[name] (the global table at index 0) if the opened libraries
// define it.
void replace(lua_State *L, const char *table, const char *name, lua_CFunction replacement)
{
    StackGuard guard(L);
    if (table) {
        if (lua_getglobal(L, table) != LUA_TTABLE) {
            lua_pop(L, 1);
            return;
        }
    } else {
        lua_pushglobaltable(L);
    }
    if (lua_getfield(L, -1, name) != LUA_TNIL) {
        lua_pushcfunction(L, replacement);
        lua_setfield(L, -3, name);
    }
    lua_pop(L, 2);
}

} // namespace

int StopAwareLib::resetThread(lua_State *L, lua_State *co)
{
    int status;
    {
        RunningScope running(co);
        status = lua_resetthread(co); // 5.4.4; lua_closethread from 5.4.6
    }
    StopControl &stop = StopControl::from(L);
    if (stop.stopping())
        stop.raiseStop(L);
    return status;
}

void StopAwareLib::install(lua_State *L)
{
    StackGuard guard(L);
    const int top = lua_gettop(L);
    if (lua_getglobal(L, LUA_DBLIBNAME) == LUA_TTABLE && lua_getfield(L, -1, "traceback") == LUA_TFUNCTION) {
        if (const lua_CFunction original = lua_tocfunction(L, -1))
            luaTraceback.store(original, std::memory_order_relaxed);
    }
    lua_settop(L, top);

    replace(L, nullptr, "pcall", pcall);
    replace(L, nullptr, "xpcall", xpcall);
    replace(L, LUA_COLIBNAME, "resume", resume);
    replace(L, LUA_COLIBNAME, "wrap", wrap);
    if (lua_getglobal(L, LUA_COLIBNAME) == LUA_TTABLE && lua_getfield(L, -1, "close") == LUA_TFUNCTION) {
        if (const lua_CFunction original = lua_tocfunction(L, -1)) {
            luaClose.store(original, std::memory_order_relaxed);
            lua_pushcfunction(L, close);
            lua_setfield(L, -3, "close");
        }
    }
    lua_settop(L, top);
}
