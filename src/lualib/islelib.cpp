// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "lualib/islelib_p.h"

#include "luautil/luaexception_p.h"
#include "luautil/stackguard_p.h"
#include "values/value_p.h"
#include "isle/worker_p.h"

#include <QtCore/QThread>

#include <chrono>
#include <climits>


namespace {

constexpr char HostFunctionType[] = "QIsle.HostFunction";

int print(lua_State *L)
{
    const int n = lua_gettop(L);
    luaL_Buffer buffer;
    luaL_buffinit(L, &buffer);
    for (int i = 1; i <= n; ++i) {
        if (i > 1)
            luaL_addchar(&buffer, '\t');
        luaL_tolstring(L, i, nullptr);
        luaL_addvalue(&buffer);
    }
    luaL_pushresult(&buffer);
    size_t length = 0;
    const char *text = lua_tolstring(L, -1, &length);
    Worker::from(L)->emitPrinted(QString::fromUtf8(text, qsizetype(length)));
    return 0;
}

RunningRequest *running(lua_State *L)
{
    RunningRequest *r = StopControl::from(L).current();
    if (!r)
        luaL_error(L, "no request is running");
    return r;
}

// A Lua number as a progress figure: floats truncate, anything past int clamps.
int toProgress(lua_Number n)
{
    if (!(n > 0)) // also NaN
        return 0;
    return n >= lua_Number(INT_MAX) ? INT_MAX : int(n);
}

// isle.progress(value [, maximum [, text]])
//
// Scripts call this in tight loops, so nothing here may post a signal per
// call: QFutureInterface throttles value and text changes itself (about 25
// notifications a second), but setProgressRange() notifies on every call and
// restarts the value at the minimum, so the range is only set when it changes
// -- or to start over, as Qt's value never moves backwards within a range.
int progress(lua_State *L)
{
    RunningRequest *r = running(L);
    // A natural place to stop or pause, whatever the hook's mode.
    StopControl::from(L).checkpoint(L);
    int value = toProgress(luaL_checknumber(L, 1));
    const bool hasMaximum = !lua_isnoneornil(L, 2);
    const int maximum = hasMaximum ? toProgress(luaL_checknumber(L, 2)) : 0;
    const bool hasText = !lua_isnoneornil(L, 3);
    const QString text = hasText ? QString::fromUtf8(luaL_checkstring(L, 3)) : QString();

    QPromise<QVariant> &promise = *r->promise;
    const QFuture<QVariant> future = promise.future();
    if (hasMaximum
        && (future.progressMaximum() != maximum || future.progressMinimum() != 0
            || value < future.progressValue())) {
        promise.setProgressRange(0, maximum);
    }
    // Qt drops a value outside a set range: show it at the nearest end.
    if (future.progressMaximum() > 0)
        value = qMin(value, future.progressMaximum());
    // The text stays until a new one is given.
    promise.setProgressValueAndText(value, hasText ? text : future.progressText());
    return 0;
}

// isle.emit(value): result 1, 2, ... of the request's future, at once.
int emitResult(lua_State *L)
{
    RunningRequest *r = running(L);
    luaL_checkany(L, 1);
    StopControl::from(L).checkpoint(L);
    QVariant value;
    try {
        value = Value::read(L, 1, QStringLiteral("emit"));
    } catch (const QIsleError &e) {
        Worker::from(L)->raise(L, QIsleError::Kind::Conversion, e.message());
    } catch (const std::bad_alloc &) {
        Worker::from(L)->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    }
    // By const reference on purpose: Qt 6.4's move overload announces the
    // result only up to the first gap (result 0 is missing until the script
    // returns), so resultReadyAt(i) would fire at the end; this overload
    // announces index i at once.
    const QVariant &emitted = value;
    r->promise->addResult(emitted, r->nextResultIndex++);
    return 0;
}

// isle.sleep(ms): waits without burning CPU; a cancel, timeout or suspend
// is seen within a slice (checkpoint() parks a suspended request and wakes on
// resume or cancel).
int sleepFor(lua_State *L)
{
    using Clock = std::chrono::steady_clock;
    const lua_Number ms = luaL_checknumber(L, 1);
    StopControl &stop = StopControl::from(L);
    // Past about 30 years (or inf), sleep until stopped.
    constexpr lua_Number Forever = 1e12;
    const auto end = ms >= Forever ? Clock::time_point::max()
                                   : Clock::now() + std::chrono::microseconds(qint64(qMax<lua_Number>(0, ms) * 1000));
    for (;;) {
        stop.checkpoint(L);
        const auto now = Clock::now();
        if (now >= end)
            return 0;
        // Short slices: the stop is seen within a millisecond.
        const auto slice = qMin<Clock::duration>(end - now, std::chrono::milliseconds(1));
        QThread::usleep(qMax<qint64>(1, std::chrono::duration_cast<std::chrono::microseconds>(slice).count()));
    }
}

// isle.canceled(): whether the request is being stopped (for cleanup code).
int canceled(lua_State *L)
{
    StopControl &stop = StopControl::from(L);
    lua_pushboolean(L, stop.stopping() || stop.pendingStop().has_value());
    return 1;
}

// The one way host code is called from Lua: C++ exceptions end here, as Lua
// errors (pcall can catch them); Lua's own errors pass through.
int callHost(lua_State *L)
{
    auto *fn = static_cast<QIsle::HostFunction *>(lua_touserdata(L, lua_upvalueindex(1)));
    Worker *worker = Worker::from(L);
    struct ActiveScope // nested blocking calls run on this coroutine
    {
        Worker *worker;
        lua_State *previous;
        ~ActiveScope() { worker->setActiveState(previous); }
    } scope{worker, worker->activeState()};
    worker->setActiveState(L);

    const int n = lua_gettop(L);
    QVariantList args;
    args.reserve(n);
    try {
        for (int i = 1; i <= n; ++i)
            args.append(Value::read(L, i, Worker::argumentPath(i)));
    } catch (const QIsleError &e) {
        worker->raise(L, QIsleError::Kind::Conversion, e.message());
    } catch (const std::bad_alloc &) {
        // No C++ exception may unwind through Lua's C frames.
        worker->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    }

    QVariant result;
    try {
        result = (*fn)(args);
    } catch (const QIsleError &e) {
        // A stop that reached host code (a nested blocking call) stays a stop,
        // also when it is the outer request's.
        if (worker->stopControl().stopping())
            worker->stopControl().raiseStop(L);
        worker->stopControl().checkpoint(L);
        worker->raise(L, QIsleError::Kind::Callback, e.message());
    } catch (const std::exception &e) {
        worker->raise(L, QIsleError::Kind::Callback, QString::fromLocal8Bit(e.what()));
    } catch (lua_longjmp *) {
        throw;
    } catch (...) {
        worker->raise(L, QIsleError::Kind::Callback, QStringLiteral("a host function threw an unknown C++ exception"));
    }

    try {
        Value::push(L, result, QStringLiteral("result"));
    } catch (const QIsleError &e) {
        worker->raise(L, QIsleError::Kind::Conversion, e.message());
    } catch (const std::bad_alloc &) {
        // No C++ exception may unwind through Lua's C frames.
        worker->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    }
    return 1;
}

int destroyHostFunction(lua_State *L)
{
    // Release the target but keep a valid, empty std::function: a finalizer
    // that runs later (Lua finalizes newest first) may still call it, and
    // gets std::bad_function_call -- a Callback error -- not freed memory.
    *static_cast<QIsle::HostFunction *>(luaL_checkudata(L, 1, HostFunctionType)) = nullptr;
    return 0;
}

} // namespace

void IsleLib::open(lua_State *L)
{
    StackGuard guard(L);
    lua_pushcfunction(L, print);
    lua_setglobal(L, "print");

    static const luaL_Reg isle[] = {
        {"progress", progress},
        {"emit", emitResult},
        {"sleep", sleepFor},
        {"canceled", canceled},
        {nullptr, nullptr},
    };
    luaL_newlib(L, isle);
    lua_setglobal(L, "isle");

    luaL_newmetatable(L, HostFunctionType);
    lua_pushcfunction(L, destroyHostFunction);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

void IsleLib::registerHostFunction(lua_State *L, const QString &name, QIsle::HostFunction fn)
{
    StackGuard guard(L);
    const QStringList parts = name.split(QLatin1Char('.'));
    lua_pushglobaltable(L);
    for (qsizetype i = 0; i + 1 < parts.size(); ++i) {
        const QByteArray key = parts.at(i).toUtf8();
        if (lua_getfield(L, -1, key.constData()) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, key.constData());
        }
        lua_remove(L, -2);
    }
    void *memory = lua_newuserdatauv(L, sizeof(QIsle::HostFunction), 0);
    new (memory) QIsle::HostFunction(std::move(fn));
    luaL_setmetatable(L, HostFunctionType);
    lua_pushcclosure(L, callHost, 1);
    lua_setfield(L, -2, parts.constLast().toUtf8().constData());
    lua_pop(L, 1);
}
