// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
// Row 13: QObjects in Lua beside QJSEngine, and calls into the GUI thread.
//  13a-d: a script reads an int property / calls Q_INVOKABLE int add(int, int)
//         of an object in its own thread (timed on that thread, loop included),
//         QJSEngine on its thread beside QIsle on the Lua thread.
//  13e-g: a script calling a function of the main thread (a context function)
//         beside the main thread's own blocking round trip to the isle.
#include "rows.h"

#include <QIsle/QIsle>

#include <QIsle/QIsleLua>

#include <QtCore/QCoreApplication>
#include <QtCore/QEventLoop>
#include <QtCore/QObject>

#if QISLE_BENCH_HAVE_QML
#  include <QtQml/QJSEngine>
#endif

namespace Rows {
namespace {

using Bench::Measured;
using Bench::Row;

class BenchCounter : public QObject
{
    Q_OBJECT
    Q_PROPERTY(int value READ value)
public:
    int value() const { return m_value; }
    Q_INVOKABLE int add(int a, int b) { return a + b; }

private:
    int m_value = 1;
};

constexpr char LuaLoops[] =
        "function readLoop(o, n) local s = 0 for i = 1, n do s = s + o.value end return s end "
        "function addLoop(o, n) local s = 0 for i = 1, n do s = s + o:add(i, 1) end return s end";

// Nanoseconds per iteration of a Lua loop over the object, timed on the Lua thread.
double luaLoopNs(QIsle &isle, const char *loop, int n)
{
    return isle.exec([loop, n](lua_State *L) {
                   lua_getglobal(L, loop);
                   lua_getglobal(L, "counter");
                   lua_pushinteger(L, n);
                   const auto start = Bench::Clock::now();
                   lua_call(L, 2, 1);
                   const double ns = Bench::secondsSince(start) * 1e9 / n;
                   const bool right = lua_tointeger(L, -1) == (std::string(loop) == "readLoop"
                                                                       ? lua_Integer(n)
                                                                       : lua_Integer(n) * (n + 1) / 2 + n);
                   lua_pop(L, 1);
                   return QVariant(right ? ns : 0.0);
               })
            .toDouble();
}

} // namespace

void objects(Bench::Table &table)
{
    const int n = Bench::settings().scale(200000, 40000);
    auto isle = QIsle::spawn([](lua_State *L) { luaL_dostring(L, LuaLoops); });
    // The object lives in the Lua thread: the script touches it directly.
    auto *counter = qvariant_cast<BenchCounter *>(isle->exec([](lua_State *) {
        return QVariant::fromValue(new BenchCounter);
    }));
    isle->exposeObject(QStringLiteral("counter"), counter);
    pinIsle(*isle, callerCpu()); // CPU-bound: both engines on one CPU

#if QISLE_BENCH_HAVE_QML
    Bench::pinCurrentThread(callerCpu());
    QJSEngine engine;
    BenchCounter jsCounter;
    QJSEngine::setObjectOwnership(&jsCounter, QJSEngine::CppOwnership);
    engine.globalObject().setProperty(QStringLiteral("counter"), engine.newQObject(&jsCounter));
    QJSValue jsRead = engine.evaluate(QStringLiteral(
            "(function(n) { var s = 0; for (var i = 1; i <= n; i++) s += counter.value; return s; })"));
    QJSValue jsAdd = engine.evaluate(QStringLiteral(
            "(function(n) { var s = 0; for (var i = 1; i <= n; i++) s += counter.add(i, 1); return s; })"));
    const auto jsNs = [&](QJSValue &f) {
        const auto start = Bench::Clock::now();
        const QJSValue r = f.call({QJSValue(n)});
        const double ns = Bench::secondsSince(start) * 1e9 / n;
        return r.isError() ? 0.0 : ns;
    };
    jsNs(jsRead); // warm the JIT
    jsNs(jsAdd);
    auto [jsReadM, luaReadM] = Bench::paired([&] { return jsNs(jsRead); },
                                             [&] { return luaLoopNs(*isle, "readLoop", n); });
    auto [jsAddM, luaAddM] = Bench::paired([&] { return jsNs(jsAdd); },
                                           [&] { return luaLoopNs(*isle, "addLoop", n); });
    Bench::pinCurrentThread(-1);
    table.add(Bench::makeRow(QStringLiteral("13a"), QStringLiteral("QJSEngine: JS reads an int Q_PROPERTY (loop included)"),
                             QStringLiteral("ns/read"), jsReadM, {}, QStringLiteral("engine and object on one thread, 1 CPU")));
    Row luaRead = Bench::makeRow(QStringLiteral("13b"), QStringLiteral("QIsle: Lua reads the int Q_PROPERTY (loop included)"),
                                 QStringLiteral("ns/read"), luaReadM, QStringLiteral("13a"),
                                 QStringLiteral("object in the Lua thread, 1 CPU"));
    Bench::judge(luaRead, QStringLiteral("≤ 1x 13a"), luaRead.ratio && luaRead.ratio->median <= 1.0);
    table.add(luaRead);
    table.add(Bench::makeRow(QStringLiteral("13c"), QStringLiteral("QJSEngine: JS calls Q_INVOKABLE int add(int, int)"),
                             QStringLiteral("ns/call"), jsAddM, {}, QStringLiteral("engine and object on one thread, 1 CPU")));
    Row luaAdd = Bench::makeRow(QStringLiteral("13d"), QStringLiteral("QIsle: Lua calls obj:add(i, 1)"),
                                QStringLiteral("ns/call"), luaAddM, QStringLiteral("13c"),
                                QStringLiteral("object in the Lua thread, 1 CPU"));
    Bench::judge(luaAdd, QStringLiteral("≤ 1x 13c"), luaAdd.ratio && luaAdd.ratio->median <= 1.0);
    table.add(luaAdd);
#else
    const QString why = QStringLiteral("n/a (needs Qt6::Qml)");
    table.add(Bench::makeRow(QStringLiteral("13b"), QStringLiteral("QIsle: Lua reads the int Q_PROPERTY (loop included)"),
                             QStringLiteral("ns/read"), Bench::repeated(5, [&] { return luaLoopNs(*isle, "readLoop", n); }),
                             {}, why));
    table.add(Bench::makeRow(QStringLiteral("13d"), QStringLiteral("QIsle: Lua calls obj:add(i, 1)"),
                             QStringLiteral("ns/call"), Bench::repeated(5, [&] { return luaLoopNs(*isle, "addLoop", n); }),
                             {}, why));
#endif
    isle->exec([counter](lua_State *) {
        delete counter;
        return QVariant();
    });

    // Calls into the main thread: the script calls gui.ping() N times while
    // the main thread runs its event loop (13f) or is blocked in waitFor
    // (13g), beside the main thread's blocking round trip (13e).
    const int calls = Bench::settings().scale(4000, 800);
    pinIsle(*isle, otherCpu());
    QObject gui;
    isle->registerFunction(QStringLiteral("gui.ping"), &gui, [](const QVariantList &args) { return args.value(0); });
    isle->eval(QStringLiteral("function noop(x) return x end "
                              "function pingLoop(n) local s = 0 for i = 1, n do s = s + gui.ping(1) end return s end"));
    const auto roundTrip = [&] {
        Bench::pinCurrentThread(callerCpu());
        const auto start = Bench::Clock::now();
        for (int i = 0; i < calls; ++i)
            isle->call(QStringLiteral("noop"), {i});
        return Bench::secondsSince(start) * 1e6 / calls;
    };
    const auto intoGui = [&](bool eventLoop) {
        Bench::pinCurrentThread(callerCpu());
        const auto start = Bench::Clock::now();
        QFuture<QVariant> job = isle->spawnCall(QStringLiteral("pingLoop"), {calls});
        if (eventLoop) {
            while (!job.isFinished())
                QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 100);
        } else {
            QIsle::waitFor(job);
        }
        const double us = Bench::secondsSince(start) * 1e6 / calls;
        return job.isResultReadyAt(0) && job.resultAt(0).toLongLong() == calls ? us : 0.0;
    };
    auto runs = Bench::roundRobin({roundTrip, [&] { return intoGui(true); }, [&] { return intoGui(false); }});
    Bench::pinCurrentThread(-1);
    isle->shutdown();
    table.add(Bench::makeRow(QStringLiteral("13e"), QStringLiteral("main thread → Lua: blocking call() round trip"),
                             QStringLiteral("us/call"), runs[0], {}, QStringLiteral("2 CPUs")));
    runs[1].ratios = Bench::ratiosOf(runs[1], runs[0]);
    runs[2].ratios = Bench::ratiosOf(runs[2], runs[0]);
    Row viaLoop = Bench::makeRow(QStringLiteral("13f"),
                                 QStringLiteral("Lua → main thread: context function, main thread in its event loop"),
                                 QStringLiteral("us/call"), runs[1], QStringLiteral("13e"), QStringLiteral("2 CPUs"));
    Bench::judge(viaLoop, QStringLiteral("≤ 2x 13e"), viaLoop.ratio && viaLoop.ratio->median <= 2.0);
    table.add(viaLoop);
    Row viaWait = Bench::makeRow(QStringLiteral("13g"),
                                 QStringLiteral("Lua → main thread: context function, main thread blocked in waitFor"),
                                 QStringLiteral("us/call"), runs[2], QStringLiteral("13e"), QStringLiteral("2 CPUs"));
    Bench::judge(viaWait, QStringLiteral("≤ 2x 13e"), viaWait.ratio && viaWait.ratio->median <= 2.0);
    table.add(viaWait);
}

} // namespace Rows

#include "rows_objects.moc"
