// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "lualib/islelib_p.h"

#include "luautil/luaexception_p.h"
#include "luautil/stackguard_p.h"
#include "values/value_p.h"
#include "isle/worker_p.h"
#include "async/scheduler_p.h"

#include <QtCore/QThread>

#include <chrono>
#include <climits>


namespace {

constexpr char HostFunctionType[] = "QIsle.HostFunction";
constexpr char AsyncHostFunctionType[] = "QIsle.AsyncHostFunction";

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
    StopControl &stop = StopControl::from(L);
    stop.checkpoint(L);
    stop.flushResults(); // results emitted before this progress are seen before it
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

// isle.emit(value): result 1, 2, ... of the request's future, at once or,
// in a flood, a batch at a time (StopControl::emitResult).
int emitResult(lua_State *L)
{
    RunningRequest *r = running(L);
    luaL_checkany(L, 1);
    StopControl &stop = StopControl::from(L);
    stop.checkpoint(L);
    QVariant value;
    try {
        value = Value::read(L, 1, QStringLiteral("emit"));
        stop.emitResult(*r, std::move(value));
    } catch (const QIsleError &e) {
        Worker::from(L)->raise(L, QIsleError::Kind::Conversion, e.message());
    } catch (const std::bad_alloc &) {
        Worker::from(L)->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    }
    return 0;
}

[[noreturn]] void raiseStopAtWait(lua_State *L)
{
    Scheduler::raiseStop(L);
}

bool mustNotWait(lua_State *L)
{
    return Scheduler::from(L).mustNotWait(L);
}

WaitState takeOutcome(lua_State *L)
{
    return Scheduler::from(L).takeOutcome(L);
}

// An awaited future's outcome, as the script sees it: result 0 (nil when
// none), or a Lua error (Callback) with the failure's message or "canceled".
int pushOutcome(lua_State *L, const WaitState &wait)
{
    Worker *worker = Worker::from(L);
    switch (wait.outcome) {
    case WaitState::Outcome::Error:
        worker->raise(L, QIsleError::Kind::Callback, wait.message);
    case WaitState::Outcome::Canceled:
        worker->raise(L, QIsleError::Kind::Callback, QStringLiteral("the awaited future was canceled"));
    case WaitState::Outcome::Stop:
        raiseStopAtWait(L);
    case WaitState::Outcome::Pending:
    case WaitState::Outcome::Value:
        break;
    }
    try {
        Value::push(L, wait.value, QStringLiteral("result"));
    } catch (const QIsleError &e) {
        worker->raise(L, QIsleError::Kind::Conversion, e.message());
    } catch (const std::bad_alloc &) {
        worker->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    }
    return 1;
}

int finishAwait(lua_State *L, int, lua_KContext)
{
    const WaitState wait = takeOutcome(L);
    return pushOutcome(L, wait);
}

// The script waits for future: yields up to the worker where it can; a
// finished future needs no wait and works anywhere.
int awaitFuture(lua_State *L, QFuture<QVariant> &future)
{
    if (future.isFinished()) {
        WaitState wait;
        Scheduler::readOutcome(future, wait);
        return pushOutcome(L, wait);
    }
    Scheduler &scheduler = Scheduler::from(L);
    if (!scheduler.canWait(L)) {
        future.cancel();
        scheduler.raiseCannotWait(L, "an async function's pending future");
    }
    if (mustNotWait(L)) {
        future.cancel();
        raiseStopAtWait(L);
    }
    scheduler.awaitFuture(future);
    return scheduler.yield(L, finishAwait, 0);
}

int finishSleep(lua_State *L, int, lua_KContext)
{
    takeOutcome(L);
    return 0;
}

// isle.sleep(ms): where the script can wait, it yields and a timer wakes it
// (the Lua thread is free meanwhile); elsewhere it blocks the thread without
// burning CPU. Either way a cancel, timeout or suspend is seen at once (a
// blocking sleep looks every millisecond; checkpoint() parks a suspended
// request and wakes on resume or cancel).
int sleepFor(lua_State *L)
{
    using Clock = std::chrono::steady_clock;
    const lua_Number ms = luaL_checknumber(L, 1);
    StopControl &stop = StopControl::from(L);
    // Past about 30 years (or inf), sleep until stopped.
    constexpr lua_Number Forever = 1e12;
    const auto end = ms >= Forever ? Clock::time_point::max()
                                   : Clock::now() + std::chrono::microseconds(qint64(qMax<lua_Number>(0, ms) * 1000));
    Scheduler &scheduler = Scheduler::from(L);
    if (scheduler.canWait(L)) {
        stop.checkpoint(L);
        if (mustNotWait(L))
            raiseStopAtWait(L);
        scheduler.sleepUntil(end);
        return scheduler.yield(L, finishSleep, 0);
    }
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

// Nested blocking calls made by host code run on the coroutine that called it.
struct ActiveScope
{
    explicit ActiveScope(Worker *w, lua_State *L) : worker(w), previous(w->activeState()) { w->setActiveState(L); }
    ~ActiveScope() { worker->setActiveState(previous); }
    Q_DISABLE_COPY_MOVE(ActiveScope)
    Worker *worker;
    lua_State *previous;
};

QVariantList readArguments(lua_State *L, Worker *worker)
{
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
    return args;
}

// Runs host code: C++ exceptions end here, as Lua errors (pcall can catch
// them); Lua's own errors pass through.
template<typename Result, typename Fn>
Result invokeHost(lua_State *L, Worker *worker, Fn &&fn)
{
    try {
        return fn();
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
}

// The one way host code is called from Lua.
int callHost(lua_State *L)
{
    auto *fn = static_cast<QIsle::HostFunction *>(lua_touserdata(L, lua_upvalueindex(1)));
    Worker *worker = Worker::from(L);
    worker->stopControl().flushResults(); // emits before a long host call are not held back by it
    QVariant result;
    {
        ActiveScope scope(worker, L);
        const QVariantList args = readArguments(L, worker);
        result = invokeHost<QVariant>(L, worker, [&] { return (*fn)(args); });
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

// An async host function: fn gives a future, the script waits for it.
int callAsyncHost(lua_State *L)
{
    auto *fn = static_cast<QIsle::AsyncHostFunction *>(lua_touserdata(L, lua_upvalueindex(1)));
    Worker *worker = Worker::from(L);
    worker->stopControl().flushResults(); // as callHost
    // Made by the host call itself: a default QFuture would allocate Qt's
    // shared state only to drop it (perf: a third of 12f's time).
    QFuture<QVariant> future = [&] {
        ActiveScope scope(worker, L);
        const QVariantList args = readArguments(L, worker);
        return invokeHost<QFuture<QVariant>>(L, worker, [&] { return (*fn)(args); });
    }();
    return awaitFuture(L, future);
}

int destroyHostFunction(lua_State *L)
{
    // Release the target but keep a valid, empty std::function: a finalizer
    // that runs later (Lua finalizes newest first) may still call it, and
    // gets std::bad_function_call -- a Callback error -- not freed memory.
    *static_cast<QIsle::HostFunction *>(luaL_checkudata(L, 1, HostFunctionType)) = nullptr;
    return 0;
}

int destroyAsyncHostFunction(lua_State *L)
{
    *static_cast<QIsle::AsyncHostFunction *>(luaL_checkudata(L, 1, AsyncHostFunctionType)) = nullptr;
    return 0;
}

// Sets the global (dotted) `name` to the function on top of the stack (popped).
void setDottedGlobal(lua_State *L, const QString &name)
{
    StackGuard guard(L, -1);
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
    lua_rotate(L, -2, 1); // table, function
    lua_setfield(L, -2, parts.constLast().toUtf8().constData());
    lua_pop(L, 1);
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
    // The host functions' metatables are made by the first registration
    // (ensureHostMetatable): a fresh VM stays lighter (issue 18, row 7f).
}

namespace {

// Makes the metatable `type`, whose __gc runs `destroy`, unless it exists.
// Called before the userdata is made: a memory error here leaks nothing.
void ensureHostMetatable(lua_State *L, const char *type, lua_CFunction destroy)
{
    if (luaL_newmetatable(L, type)) {
        lua_pushcfunction(L, destroy);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}

} // namespace

void IsleLib::registerHostFunction(lua_State *L, const QString &name, QIsle::HostFunction fn)
{
    StackGuard guard(L);
    ensureHostMetatable(L, HostFunctionType, destroyHostFunction);
    void *memory = lua_newuserdatauv(L, sizeof(QIsle::HostFunction), 0);
    new (memory) QIsle::HostFunction(std::move(fn));
    luaL_setmetatable(L, HostFunctionType);
    lua_pushcclosure(L, callHost, 1);
    setDottedGlobal(L, name);
}

void IsleLib::registerAsyncHostFunction(lua_State *L, const QString &name, QIsle::AsyncHostFunction fn)
{
    StackGuard guard(L);
    ensureHostMetatable(L, AsyncHostFunctionType, destroyAsyncHostFunction);
    void *memory = lua_newuserdatauv(L, sizeof(QIsle::AsyncHostFunction), 0);
    new (memory) QIsle::AsyncHostFunction(std::move(fn));
    luaL_setmetatable(L, AsyncHostFunctionType);
    lua_pushcclosure(L, callAsyncHost, 1);
    setDottedGlobal(L, name);
}

int IsleLib::await(lua_State *L, QFuture<QVariant> future)
{
    return awaitFuture(L, future);
}
