// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
// Row 12: the async isle. Requests as coroutines must cost next to nothing
// (maxConcurrentRequests 0 against 1), an awaited ready future next to a
// plain host function, sleeps side by side, tasks and channels.
#include "rows.h"

#include <QIsle/QIsle>

#include <QIsle/QIsleLua>

#include <QtCore/QCoreApplication>
#include <QtCore/QEventLoop>
#include <QtCore/QPromise>
#include <QtCore/QThread>

#include <vector>

namespace Rows {

namespace {

using Bench::Measured;
using Bench::Row;

std::unique_ptr<QIsle> asyncIsle(int maxConcurrentRequests)
{
    QIsleOptions options;
    options.maxConcurrentRequests = maxConcurrentRequests;
    auto isle = QIsle::spawn([](lua_State *L) {
        luaL_dostring(L, "function add(a, b) return a + b end");
    }, options);
    isle->registerFunction(QStringLiteral("plain"), [](const QVariantList &args) { return args.value(0); });
    // A ready future the application keeps (a cache): what awaiting costs.
    QPromise<QVariant> cached;
    cached.start();
    cached.addResult(QVariant(qlonglong(1)));
    cached.finish();
    isle->registerAsyncFunction(QStringLiteral("ready"), [future = cached.future()](const QVariantList &) {
        return future;
    });
    // A ready future made per call: awaiting plus making a QFutureInterface.
    isle->registerAsyncFunction(QStringLiteral("fresh"), [](const QVariantList &args) {
        QPromise<QVariant> promise;
        promise.start();
        promise.addResult(args.value(0));
        promise.finish();
        return promise.future();
    });
    // A pending future that another thread finishes at once: a real wait.
    isle->registerAsyncFunction(QStringLiteral("soon"), [](const QVariantList &args) {
        auto promise = std::make_shared<QPromise<QVariant>>();
        promise->start();
        QFuture<QVariant> future = promise->future();
        QMetaObject::invokeMethod(QCoreApplication::instance(), [promise, v = args.value(0)] {
            promise->addResult(v);
            promise->finish();
        }, Qt::QueuedConnection);
        return future;
    });
    return isle;
}

double roundTripUs(QIsle &isle, int count)
{
    Bench::pinCurrentThread(callerCpu());
    for (int i = 0; i < 20; ++i)
        isle.call(QStringLiteral("add"), {1, 2});
    const auto start = Bench::Clock::now();
    for (int i = 0; i < count; ++i)
        isle.call(QStringLiteral("add"), {1, 2});
    const double us = Bench::secondsSince(start) * 1e6 / count;
    Bench::pinCurrentThread(-1);
    return us;
}

double pipelinedRate(QIsle &isle, int count)
{
    Bench::pinCurrentThread(callerCpu());
    std::vector<QFuture<QVariant>> futures;
    futures.reserve(std::size_t(count));
    const auto start = Bench::Clock::now();
    for (int i = 0; i < count; ++i)
        futures.push_back(isle.spawnCall(QStringLiteral("add"), {1, 2}));
    for (QFuture<QVariant> &f : futures)
        f.waitForFinished();
    const double seconds = Bench::secondsSince(start);
    Bench::pinCurrentThread(-1);
    const QFuture<QVariant> &last = futures.back();
    if (last.isCanceled() || last.resultCount() == 0 || last.result() != QVariant(qlonglong(3)))
        return 0;
    return count / seconds;
}

// Microseconds per call of a Lua function, in a loop inside one request.
double perCallUs(QIsle &isle, const QString &function, int count)
{
    const QString chunk = QStringLiteral("local f, n = %1, %2\n"
                                         "local t = os.clock() for i = 1, n do f(i) end return (os.clock() - t) * 1e6 / n")
                                  .arg(function)
                                  .arg(count);
    return isle.eval(chunk).toDouble();
}

// A wait through the application's event loop: the script's call, the
// future finished by the main thread, the Lua thread woken. Needs this
// thread's event loop running meanwhile.
double awaitedRoundTripUs(QIsle &isle, int count)
{
    QFuture<QVariant> f = isle.spawnEval(QStringLiteral("for i = 1, %1 do soon(i) end return 0").arg(count));
    const auto start = Bench::Clock::now();
    while (!f.isFinished())
        QCoreApplication::processEvents(QEventLoop::AllEvents, 5);
    return Bench::secondsSince(start) * 1e6 / count;
}

// Milliseconds until `requests` requests, each sleeping `ms`, all finished.
double sleepersMs(QIsle &isle, int requests, int ms)
{
    std::vector<QFuture<QVariant>> futures;
    const auto start = Bench::Clock::now();
    for (int i = 0; i < requests; ++i)
        futures.push_back(isle.spawnEval(QStringLiteral("isle.sleep(%1) return 1").arg(ms)));
    for (QFuture<QVariant> &f : futures)
        f.waitForFinished();
    const double elapsed = Bench::secondsSince(start) * 1e3;
    for (QFuture<QVariant> &f : futures) {
        if (f.isCanceled() || f.resultCount() == 0)
            return -1;
    }
    return elapsed;
}

} // namespace

void async(Bench::Table &table)
{
    const Bench::Settings &s = Bench::settings();
    const int trips = s.scale(600, 200);
    const int pipelined = s.scale(100000, 20000);
    const int loop = s.scale(200000, 50000);

    auto one = asyncIsle(1);
    auto unlimited = asyncIsle(0);
    pinIsle(*one, otherCpu());
    pinIsle(*unlimited, otherCpu());
    const QString apart = QStringLiteral("threads pinned to CPUs %1 and %2").arg(callerCpu()).arg(otherCpu());

    // 12a/12b: round trip, maxConcurrentRequests 1 then 0.
    {
        auto [ref, zero] = Bench::paired([&] { return roundTripUs(*one, trips); },
                                          [&] { return roundTripUs(*unlimited, trips); });
        table.add(Bench::makeRow(QStringLiteral("12a"), QStringLiteral("call(\"add\") round trip, maxConcurrentRequests = 1"),
                                 QStringLiteral("us"), ref, {}, apart));
        Row r = Bench::makeRow(QStringLiteral("12b"), QStringLiteral("call(\"add\") round trip, maxConcurrentRequests = 0"),
                               QStringLiteral("us"), zero, QStringLiteral("12a"), apart);
        Bench::judge(r, QStringLiteral("as fast (≥ 0.95x): ≤ 1.05x 12a"), r.ratio && r.ratio->median <= 1.0 / 0.95);
        table.add(r);
    }
    // 12c/12d: pipelined.
    {
        auto [ref, zero] = Bench::paired([&] { return pipelinedRate(*one, pipelined); },
                                          [&] { return pipelinedRate(*unlimited, pipelined); }, 2.0);
        table.add(Bench::makeRow(QStringLiteral("12c"),
                                 QStringLiteral("%1 pipelined spawnCall, maxConcurrentRequests = 1").arg(pipelined),
                                 QStringLiteral("calls/s"), ref, {}, apart));
        Row r = Bench::makeRow(QStringLiteral("12d"),
                               QStringLiteral("%1 pipelined spawnCall, maxConcurrentRequests = 0").arg(pipelined),
                               QStringLiteral("calls/s"), zero, QStringLiteral("12c"), apart);
        Bench::judge(r, QStringLiteral("≥ 0.95x 12c"), r.ratio && r.ratio->median >= 0.95);
        table.add(r);
    }
    // 12e/12f: an awaited ready future against a plain host function.
    {
        auto [plain, ready] = Bench::paired([&] { return perCallUs(*one, QStringLiteral("plain"), loop); },
                                            [&] { return perCallUs(*one, QStringLiteral("ready"), loop); });
        table.add(Bench::makeRow(QStringLiteral("12e"), QStringLiteral("Lua calls a registerFunction host function"),
                                 QStringLiteral("us/call"), plain, {}, QStringLiteral("in a loop inside one request")));
        Row r = Bench::makeRow(QStringLiteral("12f"),
                               QStringLiteral("Lua calls a registerAsyncFunction returning a ready future (kept by the app)"),
                               QStringLiteral("us/call"), ready, QStringLiteral("12e"),
                               QStringLiteral("in a loop inside one request"));
        Bench::judge(r, QStringLiteral("≤ 3x 12e"), r.ratio && r.ratio->median <= 3.0);
        table.add(r);
        auto fresh = Bench::paired([&] { return perCallUs(*one, QStringLiteral("plain"), loop); },
                                   [&] { return perCallUs(*one, QStringLiteral("fresh"), loop); }).second;
        table.add(Bench::makeRow(QStringLiteral("12f2"),
                                 QStringLiteral("Lua calls a registerAsyncFunction that makes a ready future per call"),
                                 QStringLiteral("us/call"), fresh, QStringLiteral("12e"),
                                 QStringLiteral("QPromise start/addResult/finish per call: Qt's future allocation "
                                                "dominates")));
    }
    // 12g: a real wait: the future finished by the main thread's event loop.
    {
        const int waits = s.scale(5000, 1000);
        Measured m = Bench::repeated(s.pairs, [&] { return awaitedRoundTripUs(*unlimited, waits); });
        table.add(Bench::makeRow(QStringLiteral("12g"),
                                 QStringLiteral("Lua awaits a pending future finished by the main thread"),
                                 QStringLiteral("us/wait"), m, {},
                                 QStringLiteral("yield, main thread's queued call, QFutureWatcher wake-up, resume")));
    }
    // 12h: 100 requests, each sleeping 100 ms.
    {
        Measured m = Bench::repeated(s.scale(5, 3), [&] { return sleepersMs(*unlimited, 100, 100); }, 2.0);
        Row r = Bench::makeRow(QStringLiteral("12h"),
                               QStringLiteral("100 requests, each isle.sleep(100), maxConcurrentRequests = 0: all finished"),
                               QStringLiteral("ms"), m);
        Bench::judge(r, QStringLiteral("≤ 200 ms"), r.stats.median > 0 && r.stats.median <= 200);
        table.add(r);
    }
    // 12i: a task's whole life.
    {
        const int n = s.scale(100000, 20000);
        const QString chunk = QStringLiteral("local f = function(x) return x end local t = os.clock()\n"
                                             "for i = 1, %1 do isle.spawn(f, i):join() end\n"
                                             "return (os.clock() - t) * 1e6 / %1").arg(n);
        Measured m = Bench::repeated(s.pairs, [&] { return one->eval(chunk).toDouble(); });
        table.add(Bench::makeRow(QStringLiteral("12i"), QStringLiteral("isle.spawn(f, i):join(), one after another"),
                                 QStringLiteral("us/task"), m, {},
                                 QStringLiteral("spawn, the spawner waits in join, the task runs and ends, the join returns")));
    }
    // 12j/12k: values handed between two coroutines, Lua's own beside a channel.
    {
        const int n = s.scale(500000, 100000);
        const QString coroutines = QStringLiteral(
                "local co = coroutine.wrap(function() while true do coroutine.yield(1) end end)\n"
                "local t = os.clock() for i = 1, %1 do co() end return %1 / (os.clock() - t)").arg(n);
        const QString rendezvous = QStringLiteral(
                "local ch = isle.channel()\n"
                "local t = os.clock()\n"
                "isle.spawn(function() for i = 1, %1 do ch:send(i) end end)\n"
                "for i = 1, %1 do ch:recv() end return %1 / (os.clock() - t)").arg(n);
        const QString buffered = QStringLiteral(
                "local ch = isle.channel(64)\n"
                "local t = os.clock()\n"
                "isle.spawn(function() for i = 1, %1 do ch:send(i) end end)\n"
                "for i = 1, %1 do ch:recv() end return %1 / (os.clock() - t)").arg(n);
        auto [lua, channel] = Bench::paired([&] { return one->eval(coroutines).toDouble(); },
                                            [&] { return one->eval(rendezvous).toDouble(); });
        auto big = Bench::paired([&] { return one->eval(coroutines).toDouble(); },
                                 [&] { return one->eval(buffered).toDouble(); }).second;
        table.add(Bench::makeRow(QStringLiteral("12j"), QStringLiteral("Lua-only coroutine ping-pong (wrap: resume + yield)"),
                                 QStringLiteral("pairs/s"), lua, {}, QStringLiteral("the floor: Lua's own switch; each yield is a C++ throw in Debian's C++ Lua")));
        table.add(Bench::makeRow(QStringLiteral("12k"),
                                 QStringLiteral("isle.channel() rendezvous: a task sends, the request receives"),
                                 QStringLiteral("pairs/s"), channel, QStringLiteral("12j"),
                                 QStringLiteral("every pair: two fiber switches through the worker")));
        table.add(Bench::makeRow(QStringLiteral("12l"),
                                 QStringLiteral("isle.channel(64) buffered: a task sends, the request receives"),
                                 QStringLiteral("pairs/s"), big, QStringLiteral("12j"),
                                 QStringLiteral("a switch per 64 values")));
    }
    one->shutdown();
    unlimited->shutdown();
}

} // namespace Rows
