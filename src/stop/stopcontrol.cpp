// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "stop/stopcontrol_p.h"
#include "luautil/statecontext_p.h"

namespace {

// Hook mode: always on.
void countHook(lua_State *L, lua_Debug *)
{
    StopControl::from(L).checkpoint(L);
}

// Signal mode: armed by the stop signal for one look, then gone.
void armedHook(lua_State *L, lua_Debug *)
{
    lua_sethook(L, nullptr, 0, 0);
    StopControl::from(L).checkpoint(L);
}

// pcall/xpcall continuation, as in Lua's lbaselib.c, plus: a stop is never
// swallowed, it is raised again at once.
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

int guardedPcall(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    const int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finishProtectedCall);
    return finishProtectedCall(L, status, 0);
}

// An error raised by the hook runs the message handler with hooks off, so a
// handler that loops could never be stopped: skip it while a stop is raised.
int guardedMessageHandler(lua_State *L)
{
    if (StopControl::from(L).stopping())
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

int guardedXpcall(lua_State *L)
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

// coroutine.resume: the signal must arm the coroutine that runs, and a stop
// raised inside it comes back as (false, message): raise it in the resumer.
int guardedResume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    {
        RunningScope running(co ? co : L);
        lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    }
    StopControl &stop = StopControl::from(L);
    if (stop.stopping())
        stop.raiseStop(L);
    stop.checkpoint(L); // a stop that arrived while the coroutine ran
    return lua_gettop(L);
}

// coroutine.wrap's function, as lcorolib.c's auxwrap, resuming through the
// same bookkeeping as guardedResume.
int resumeWrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    const int nargs = lua_gettop(L);
    if (!lua_checkstack(co, nargs))
        return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, nargs);
    int nresults = 0;
    int status;
    {
        RunningScope running(co);
        status = lua_resume(co, L, nargs, &nresults);
    }
    StopControl &stop = StopControl::from(L);
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nresults + 1)) {
            lua_pop(co, nresults);
            return luaL_error(L, "too many results to resume");
        }
        lua_xmove(co, L, nresults);
        stop.checkpoint(L);
        return nresults;
    }
    if (stop.stopping())
        stop.raiseStop(L);
    status = lua_resetthread(co); // close its to-be-closed variables (5.4.4)
    lua_xmove(co, L, 1);             // the error object
    if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

int guardedWrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, resumeWrapped, 1);
    return 1;
}

} // namespace

StopControl::StopControl() = default;

StopControl &StopControl::from(lua_State *L)
{
    return *StateContext::of(L)->stop;
}
StopControl::~StopControl() = default;

void StopControl::install(lua_State *L, const QIsleOptions &options, std::function<bool()> stopPending)
{
    using Mode = QIsleOptions::StopMode;
    m_mode = options.stopMode;
    if (m_mode == Mode::Automatic)
        m_mode = StopSignal::preferred() ? Mode::Signal : Mode::Hook;
    if (m_mode == Mode::Signal && !StopSignal::supported())
        m_mode = Mode::Hook; // asked for, but it cannot work here
    if (m_mode == Mode::Signal) {
        m_signal = std::make_unique<StopSignal>(options.stopPollInterval, armedHook, std::move(stopPending));
        if (!m_signal->isValid()) {
            m_signal.reset();
            m_mode = Mode::Hook;
        } else if (m_inBurst) {
            m_signal->start(); // requests queued behind spawn()'s init run in this burst
        }
    }
    if (m_mode == Mode::Hook)
        lua_sethook(L, countHook, LUA_MASKCOUNT, options.hookInterval > 0 ? options.hookInterval : 1000);

    lua_pushcfunction(L, guardedPcall);
    lua_setglobal(L, "pcall");
    lua_pushcfunction(L, guardedXpcall);
    lua_setglobal(L, "xpcall");

    if (lua_getglobal(L, "coroutine") == LUA_TTABLE) {
        lua_getfield(L, -1, "resume");
        lua_pushcclosure(L, guardedResume, 1);
        lua_setfield(L, -2, "resume");
        lua_pushcfunction(L, guardedWrap);
        lua_setfield(L, -2, "wrap");
    }
    lua_pop(L, 1);
}

void StopControl::burstBegin()
{
    m_inBurst = true;
    if (m_signal)
        m_signal->start();
}

void StopControl::burstEnd()
{
    m_inBurst = false;
    if (m_signal)
        m_signal->stop();
}

void StopControl::begin(RunningRequest &running, lua_State *L)
{
    running.outer = m_current;
    running.previousRunning = StopSignal::running();
    StopSignal::setRunning(L);
    m_current = &running;
}

void StopControl::end(RunningRequest &running)
{
    Q_ASSERT(m_current == &running);
    m_current = running.outer;
    StopSignal::setRunning(running.previousRunning);
}

std::optional<QIsleError::Kind> StopControl::pendingStop() const
{
    if (!m_current)
        return std::nullopt;
    if (m_current->stop)
        return m_current->stop;
    std::chrono::steady_clock::time_point now{};
    // An outer request's stop stops the nested ones too.
    for (RunningRequest *r = m_current; r; r = r->outer) {
        if (r->promise->isCanceled())
            return QIsleError::Kind::Cancelled;
        if (r->deadline != std::chrono::steady_clock::time_point::max()) {
            if (now == std::chrono::steady_clock::time_point{})
                now = std::chrono::steady_clock::now();
            if (now >= r->deadline)
                return QIsleError::Kind::Timeout;
        }
    }
    return std::nullopt;
}

void StopControl::checkpoint(lua_State *L)
{
    if (!m_current)
        return;
    // Blocks while suspended; cancel() wakes it.
    m_current->promise->suspendIfRequested();
    const auto now = std::chrono::steady_clock::now();
    if (m_current->stop) {
        // Raised already: cleanup code (__close handlers) gets a moment to
        // run before the hook raises it again. pcall, xpcall and
        // coroutine.resume re-raise at once on their own.
        if (now - m_current->stopRaisedAt >= std::chrono::milliseconds(10))
            raiseStop(L);
        return;
    }
    if (auto kind = pendingStop()) {
        m_current->stop = kind;
        m_current->stopRaisedAt = now;
        raiseStop(L);
    }
}

void StopControl::raiseStop(lua_State *L)
{
    Q_ASSERT(m_current && m_current->stop);
    if (*m_current->stop == QIsleError::Kind::Timeout)
        lua_pushliteral(L, "request timed out");
    else
        lua_pushliteral(L, "request canceled");
    lua_error(L);
    Q_UNREACHABLE(); // lua_error throws
}
