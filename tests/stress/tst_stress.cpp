// Stress: 8 caller threads of mixed traffic against one isle, with random
// cancels, suspend/resume, and isles created and destroyed mid-traffic.
//
// QISLE_STRESS_SCALE (default 1) scales the request counts; sanitizer runs
// use less. QISLE_STRESS_SEED repeats a run's requests (its seed is printed).
// A watchdog turns a hang into a failure with a message.
#include <QIsle/QIsle>

#include <QtCore/QFile>
#include <QtCore/QRandomGenerator>
#include <QtTest/QtTest>

#include <QIsle/QIsleLua>

#include <deque>
#include <optional>

#include "stresskit.h"

namespace {

using StressKit::describe;
using StressKit::Failures;
using StressKit::scaled;
using StressKit::Watchdog;

constexpr int CallerThreads = 8;
constexpr int Window = 12; // futures a caller keeps in flight

// What a request must end with, unless it was canceled.
struct Expected
{
    QVariant value;
    std::optional<QIsleError::Kind> error;
    QString messagePart; // for errors
    QString what;        // the request, for messages
};

enum class Action { None, Cancel, SuspendResume, SuspendCancel };

struct InFlight
{
    QFuture<QVariant> future;
    Expected expected;
    Action action = Action::None;
    int actAt = 0;      // the caller's step at which the action (next stage) runs
    bool suspended = false;
    bool canceled = false;
    bool isleGone = false; // its isle was destroyed with the request in flight
};

// Checks a finished future against what it should hold. A canceled one may
// hold its result (it finished first) or nothing; what it holds must be right.
void check(InFlight &f, Failures &failures)
{
    const Expected &e = f.expected;
    try {
        f.future.waitForFinished();
        if (f.future.isCanceled()) {
            if (!f.canceled)
                failures.add(QStringLiteral("%1: canceled, but nobody canceled it").arg(e.what));
            else if (f.future.resultCount() > 0 && (e.error || f.future.result() != e.value))
                failures.add(QStringLiteral("%1: canceled late with wrong result %2").arg(e.what, describe(f.future.result())));
            return;
        }
        if (e.error) {
            failures.add(QStringLiteral("%1: expected error %2, got %3")
                                 .arg(e.what, QIsleError::kindName(*e.error),
                                      f.future.resultCount() ? describe(f.future.result()) : QStringLiteral("nothing")));
            return;
        }
        if (f.future.resultCount() == 0 || f.future.result() != e.value)
            failures.add(QStringLiteral("%1: expected %2, got %3")
                                 .arg(e.what, describe(e.value),
                                      f.future.resultCount() ? describe(f.future.result()) : QStringLiteral("nothing")));
    } catch (const QIsleError &error) {
        if (f.canceled && error.kind() == QIsleError::Kind::Cancelled)
            return;
        // A request running while its isle is destroyed may also fail with
        // the shutdown (e.g. a nested blocking call refused mid-way).
        if (f.isleGone && (error.kind() == QIsleError::Kind::Shutdown
                           || error.message().contains(QLatin1String("shut down"))))
            return;
        if (!e.error || error.kind() != *e.error || !error.message().contains(e.messagePart))
            failures.add(QStringLiteral("%1: unexpected %2 error '%3'")
                                 .arg(e.what, QIsleError::kindName(error.kind()), error.message()));
    } catch (...) {
        failures.add(QStringLiteral("%1: a non-QIsleError exception").arg(e.what));
    }
}

// The functions every stressed isle has.
void registerHost(QIsle *isle)
{
    isle->registerFunction(QStringLiteral("host.mul"), [](const QVariantList &args) {
        return QVariant(args.value(0).toLongLong() * args.value(1).toLongLong());
    });
    isle->registerFunction(QStringLiteral("host.fail"), [](const QVariantList &args) -> QVariant {
        throw std::runtime_error(("host failure " + args.value(0).toString()).toStdString());
    });
    // A blocking call made on the Lua thread: runs inline, nested.
    isle->registerFunction(QStringLiteral("host.nested"), [isle](const QVariantList &args) {
        return isle->eval(QStringLiteral("return 1 + %1").arg(args.value(0).toLongLong()));
    });
}

QIsle::Init stressInit()
{
    return [](lua_State *L) {
        luaL_dostring(L, "function add(a, b) return a + b end\n"
                         "function bump(name) _G[name] = (_G[name] or 0) + 1 return _G[name] end");
    };
}

// One random request of any kind, with what it must answer.
InFlight submitRandom(QIsle *isle, QRandomGenerator &rng, int caller)
{
    const qint64 a = rng.bounded(-1000, 1000);
    const qint64 b = rng.bounded(-1000, 1000);
    InFlight f;
    Expected &e = f.expected;
    switch (rng.bounded(13)) {
    case 0:
        e.what = QStringLiteral("return %1 + %2").arg(a).arg(b);
        f.future = isle->spawnEval(e.what);
        e.value = qlonglong(a + b);
        break;
    case 1:
        e.what = QStringLiteral("call add(%1, %2)").arg(a).arg(b);
        f.future = isle->spawnCall(QStringLiteral("add"), {a, b});
        e.value = qlonglong(a + b);
        break;
    case 2:
        e.what = QStringLiteral("exec add(%1, %2)").arg(a).arg(b);
        f.future = isle->spawnExec([a, b](lua_State *L) {
            lua_getglobal(L, "add");
            lua_pushinteger(L, a);
            lua_pushinteger(L, b);
            lua_call(L, 2, 1);
            const QVariant r = QIsleValue::read(L, -1);
            lua_pop(L, 1);
            return r;
        });
        e.value = qlonglong(a + b);
        break;
    case 3:
        e.what = QStringLiteral("return host.mul(%1, %2)").arg(a).arg(b);
        f.future = isle->spawnEval(e.what);
        e.value = qlonglong(a * b);
        break;
    case 4:
        e.what = QStringLiteral("local x = %1\nerror('boom ' .. x)").arg(a);
        f.future = isle->spawnEval(e.what);
        e.error = QIsleError::Kind::Runtime;
        e.messagePart = QStringLiteral("boom %1").arg(a);
        break;
    case 5:
        e.what = QStringLiteral("return {%1, 'x', {k = %2, f = 1.5}}").arg(a).arg(b);
        f.future = isle->spawnEval(e.what);
        e.value = QVariantList{qlonglong(a), QStringLiteral("x"),
                               QVariantMap{{QStringLiteral("k"), qlonglong(b)}, {QStringLiteral("f"), 1.5}}};
        break;
    case 6:
        e.what = QStringLiteral("return {n = %1, f = print}").arg(a);
        f.future = isle->spawnEval(e.what);
        e.error = QIsleError::Kind::Conversion;
        e.messagePart = QStringLiteral("function");
        break;
    case 7:
        e.what = QStringLiteral("return host.fail(%1)").arg(a);
        f.future = isle->spawnEval(e.what);
        e.error = QIsleError::Kind::Callback;
        e.messagePart = QStringLiteral("host failure %1").arg(a);
        break;
    case 8: {
        const int n = int(rng.bounded(0, 50));
        e.what = QStringLiteral("call string.rep('ab', %1)").arg(n);
        f.future = isle->spawnCall(QStringLiteral("string.rep"), {QStringLiteral("ab"), n});
        e.value = QStringLiteral("ab").repeated(n);
        break;
    }
    case 9: {
        // Long enough to be canceled or suspended while it runs.
        const qint64 n = rng.bounded(1000, 20000);
        const int sleepMs = int(rng.bounded(0, 2));
        e.what = QStringLiteral("local s = 0 for i = 1, %1 do s = s + i end isle.sleep(%2) return s").arg(n).arg(sleepMs);
        f.future = isle->spawnEval(e.what);
        e.value = qlonglong(n * (n + 1) / 2);
        break;
    }
    case 10:
        if (rng.bounded(2)) {
            e.what = QStringLiteral("exec lua_error");
            f.future = isle->spawnExec([a](lua_State *L) -> QVariant {
                luaL_error(L, "closure error %d", int(a));
                return {};
            });
            e.error = QIsleError::Kind::Runtime;
            e.messagePart = QStringLiteral("closure error %1").arg(a);
        } else {
            e.what = QStringLiteral("exec throws");
            f.future = isle->spawnExec([a](lua_State *) -> QVariant {
                throw std::runtime_error("closure threw " + std::to_string(a));
            });
            e.error = QIsleError::Kind::Callback;
            e.messagePart = QStringLiteral("closure threw %1").arg(a);
        }
        break;
    case 11:
        e.what = QStringLiteral("return host.nested(%1)").arg(a);
        f.future = isle->spawnEval(e.what);
        e.value = qlonglong(a + 1);
        break;
    default:
        e.what = QStringLiteral("local ok, m = pcall(error, 'caught %1') return m").arg(a);
        f.future = isle->spawnEval(e.what);
        e.value = QStringLiteral("caught %1").arg(a);
        break;
    }
    Q_UNUSED(caller);
    return f;
}

// Runs (or finishes early) the cancel/suspend plan of a request.
void act(InFlight &f, QRandomGenerator &rng, int step, bool force)
{
    if (f.action == Action::None || (!force && step < f.actAt))
        return;
    switch (f.action) {
    case Action::None:
        break;
    case Action::Cancel:
        f.canceled = true;
        f.future.cancel();
        f.action = Action::None;
        break;
    case Action::SuspendResume:
    case Action::SuspendCancel:
        if (!f.suspended) {
            f.future.suspend();
            f.suspended = true;
            f.actAt = step + int(rng.bounded(1, 4));
            if (!force)
                break;
        }
        if (f.action == Action::SuspendCancel) {
            f.canceled = true;
            f.future.cancel();
        } else {
            f.future.resume();
        }
        f.action = Action::None;
        break;
    }
}

// One caller thread: `count` random requests, at most Window in flight,
// about 10% of them canceled or suspended at a random later moment.
void callerLoop(QIsle *isle, int caller, quint32 seed, int count, Failures &failures, Watchdog &dog)
{
    QRandomGenerator rng(seed);
    std::deque<InFlight> inFlight;
    const auto finishOldest = [&](int step) {
        InFlight &f = inFlight.front();
        act(f, rng, step, true);
        check(f, failures);
        ++dog.progress;
        inFlight.pop_front();
    };
    for (int step = 0; step < count; ++step) {
        for (InFlight &f : inFlight)
            act(f, rng, step, false);
        InFlight f = submitRandom(isle, rng, caller);
        const int roll = int(rng.bounded(100));
        if (roll < 4) {
            f.canceled = true; // right away: most likely still queued
            f.future.cancel();
        } else if (roll < 8) {
            f.action = Action::Cancel;
        } else if (roll < 10) {
            f.action = Action::SuspendResume;
        } else if (roll < 11) {
            f.action = Action::SuspendCancel;
        }
        f.actAt = step + int(rng.bounded(0, 6));
        inFlight.push_back(std::move(f));
        if (inFlight.size() > size_t(Window))
            finishOldest(step);
        if (step % 97 == 0) {
            // A blocking call now and then: nothing of ours may stay
            // suspended while we wait, or we would wait on ourselves.
            while (!inFlight.empty())
                finishOldest(step);
            try {
                const QVariant r = isle->call(QStringLiteral("bump"), {QStringLiteral("blocking_%1").arg(caller)});
                if (r.toLongLong() <= 0)
                    failures.add(QStringLiteral("bump returned %1").arg(describe(r)));
            } catch (const QIsleError &e) {
                failures.add(QStringLiteral("blocking call failed: %1").arg(QString::fromUtf8(e.what())));
            }
        }
    }
    while (!inFlight.empty())
        finishOldest(count);
}

// Isles born and destroyed while the others run: destroy with work queued
// and running, or shut down after a burst; every future must end finished.
void churnLoop(int isles, quint32 seed, Failures &failures, Watchdog &dog)
{
    QRandomGenerator rng(seed);
    for (int i = 0; i < isles; ++i) {
        std::unique_ptr<QIsle> isle;
        try {
            isle = QIsle::spawn(stressInit());
        } catch (const QIsleError &e) {
            failures.add(QStringLiteral("churn: spawn failed: %1").arg(QString::fromUtf8(e.what())));
            continue;
        }
        registerHost(isle.get());
        const bool destroy = rng.bounded(3) != 0;
        QList<InFlight> futures;
        const int n = int(rng.bounded(1, 40));
        for (int k = 0; k < n; ++k) {
            InFlight f;
            if (destroy && rng.bounded(10) == 0) {
                f.future = isle->spawnEval(QStringLiteral("while true do end"));
                f.expected.what = QStringLiteral("churn: endless loop");
                f.canceled = true; // the destructor cancels it
            } else {
                f = submitRandom(isle.get(), rng, -1);
                f.canceled = destroy; // queued work may be canceled by the destructor
            }
            f.isleGone = destroy;
            futures << f;
        }
        if (rng.bounded(2))
            QThread::usleep(rng.bounded(0, 3000));
        if (destroy) {
            isle.reset();
        } else {
            isle->shutdown();
            isle.reset();
        }
        for (InFlight &f : futures) {
            if (!f.future.isFinished()) {
                failures.add(QStringLiteral("churn: %1 not finished after the isle was %2")
                                     .arg(f.expected.what, destroy ? QStringLiteral("destroyed")
                                                                   : QStringLiteral("shut down")));
                continue;
            }
            if (f.expected.what != QLatin1String("churn: endless loop"))
                check(f, failures);
            ++dog.progress;
        }
    }
}

qint64 residentBytes()
{
    QFile statm(QStringLiteral("/proc/self/statm"));
    if (!statm.open(QIODevice::ReadOnly))
        return -1;
    const QList<QByteArray> fields = statm.readAll().split(' ');
    return fields.size() > 1 ? fields.at(1).toLongLong() * 4096 : -1;
}

qint64 vmBytesAfterFullCollect(QIsle *isle)
{
    return isle->exec([](lua_State *L) {
                   lua_gc(L, LUA_GCCOLLECT);
                   lua_gc(L, LUA_GCCOLLECT); // a second cycle for finalized objects
                   return QVariant(qlonglong(lua_gc(L, LUA_GCCOUNT)) * 1024 + lua_gc(L, LUA_GCCOUNTB));
               })
            .toLongLong();
}

} // namespace

class tst_Stress : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void mixedTrafficWithChurn();
};

void tst_Stress::mixedTrafficWithChurn()
{
    Watchdog dog("tst_Stress::mixedTrafficWithChurn");
    const quint32 seed = StressKit::seed(QRandomGenerator::system()->generate());
    dog.setSeed(seed);
    qInfo("seed %u (QISLE_STRESS_SEED=%u repeats this run's requests)", seed, seed);
    Failures failures;
    const int rounds = 4;
    const int perCaller = scaled(1500);
    const int churnIsles = scaled(25);

    std::unique_ptr<QIsle> isle = QIsle::spawn(stressInit());
    registerHost(isle.get());

    QList<qint64> vmBytes;
    QList<qint64> rss;
    QElapsedTimer timer;
    timer.start();
    for (int round = 0; round < rounds; ++round) {
        dog.setPhase(round == 0 ? "round 0" : round == 1 ? "round 1" : round == 2 ? "round 2" : "round 3+");
        QList<QThread *> threads;
        for (int c = 0; c < CallerThreads; ++c) {
            const quint32 callerSeed = seed + quint32(1000 * round + c);
            threads << QThread::create([&, c, callerSeed] {
                callerLoop(isle.get(), c, callerSeed, perCaller, failures, dog);
            });
        }
        threads << QThread::create([&, round] { churnLoop(churnIsles, seed + quint32(9000 + round), failures, dog); });
        for (QThread *t : threads)
            t->start();
        for (QThread *t : threads) {
            t->wait(); // bounded by the watchdog
            delete t;
        }
        QVERIFY2(failures.count() == 0, qPrintable(failures.summary() + QStringLiteral("\n  seed %1").arg(seed)));

        dog.setPhase("checking the VM still serves");
        QCOMPARE(isle->eval(QStringLiteral("return 6 * 7")), QVariant(qlonglong(42)));
        QVERIFY(isle->isAlive());
        vmBytes << vmBytesAfterFullCollect(isle.get());
        rss << residentBytes();
        qDebug("round %d: %d requests checked so far, %lld ms, Lua heap %lld bytes, RSS %lld KiB", round,
               dog.progress.load(), timer.elapsed(), vmBytes.last(), rss.last() / 1024);
    }

    // Every caller's blocking bump ran exactly once per 97 steps.
    const int bumps = (perCaller + 96) / 97;
    for (int c = 0; c < CallerThreads; ++c)
        QCOMPARE(isle->eval(QStringLiteral("return blocking_%1").arg(c)), QVariant(qlonglong(bumps * rounds)));

    // Memory does not grow across rounds: round 0 warms up (allocator
    // arenas, string interning, Qt's caches); later rounds must stay level.
    const qint64 vmTolerance = vmBytes.at(1) / 10 + 16 * 1024;
    QVERIFY2(vmBytes.last() <= vmBytes.at(1) + vmTolerance,
             qPrintable(QStringLiteral("Lua heap grew from %1 to %2 bytes").arg(vmBytes.at(1)).arg(vmBytes.last())));
#ifndef QISLE_STRESS_SANITIZED
    // Sanitizers keep freed memory in quarantine: RSS says nothing there.
    const qint64 rssTolerance = 4 * 1024 * 1024; // measured: ~50 KiB a round
    QVERIFY2(rss.last() <= rss.at(1) + rssTolerance,
             qPrintable(QStringLiteral("RSS grew from %1 to %2 KiB").arg(rss.at(1) / 1024).arg(rss.last() / 1024)));
#endif
    isle->shutdown();
    QVERIFY(!isle->isAlive());
}

QTEST_GUILESS_MAIN(tst_Stress)
#include "tst_stress.moc"
