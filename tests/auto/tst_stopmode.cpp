// The stop machinery in both modes: Signal (no hook while scripts run; a
// timer signal arms a one-shot hook) and Hook (always-on count hook).
#include <QIsle/QIsle>

#include <QtTest/QtTest>

#include <QIsle/QIsleLua>

#include <cerrno>
#include <chrono>
#include <ctime>

using Mode = QIsleOptions::StopMode;
Q_DECLARE_METATYPE(QIsleOptions::StopMode)

namespace {

std::unique_ptr<QIsle> spawnIn(Mode mode, QIsleOptions options = {})
{
    options.stopMode = mode;
    return QIsle::spawn({}, options);
}

void addModes()
{
    QTest::addColumn<Mode>("mode");
}

} // namespace

class tst_StopMode : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void modeIsReported();
    void loopsStop_data();
    void loopsStop();
    void nestedHostCallbackStops_data() { modeRows(); }
    void nestedHostCallbackStops();
    void suspendResume_data() { modeRows(); }
    void suspendResume();
    void timeoutInEachMode_data() { modeRows(); }
    void timeoutInEachMode();
    void nestedRequestTimeout_data() { modeRows(); }
    void nestedRequestTimeout();
    void cancelsRacingCompletion_data() { modeRows(); }
    void cancelsRacingCompletion();
    void dueResultsDoNotFloodALongCFunction();
    void blockingCallStoppedByDestructor_data() { modeRows(); }
    void blockingCallStoppedByDestructor();

private:
    static void modeRows()
    {
        addModes();
        QTest::addRow("signal") << Mode::Signal;
        QTest::addRow("hook") << Mode::Hook;
    }
};

void tst_StopMode::modeIsReported()
{
    QCOMPARE(spawnIn(Mode::Hook)->stopMode(), Mode::Hook);
#if defined(Q_OS_LINUX) && !defined(__SANITIZE_THREAD__)
    QCOMPARE(spawnIn(Mode::Signal)->stopMode(), Mode::Signal);
    const Mode automatic = spawnIn(Mode::Automatic)->stopMode();
    if (qEnvironmentVariable("QISLE_STOP_MODE") == QLatin1String("hook"))
        QCOMPARE(automatic, Mode::Hook);
    else
        QCOMPARE(automatic, Mode::Signal);
#endif
}

void tst_StopMode::loopsStop_data()
{
    addModes();
    QTest::addColumn<QString>("chunk");
    const QList<QPair<const char *, const char *>> loops = {
        {"while", "while true do end"},
        {"numeric-for", "local s = 0 for i = 1, math.maxinteger do s = s + i end"},
        {"coroutine-wrap", "coroutine.wrap(function() while true do end end)()"},
        {"nested-coroutines",
         "local inner = coroutine.wrap(function() while true do end end)\n"
         "local outer = coroutine.create(function() inner() end)\n"
         "while true do coroutine.resume(outer) end"},
        {"yielding-coroutine",
         "local co = coroutine.wrap(function() while true do coroutine.yield(1) end end)\n"
         "while true do co() end"},
        {"pcall", "while true do pcall(function() while true do end end) end"},
        {"xpcall-handler-loops",
         "xpcall(function() while true do end end, function() while true do end end)"},
        {"error-in-loop", "while true do pcall(error, {}) end"},
        {"sort-comparator",
         "local t = {} for i = 1, 100000 do t[i] = (i * 7919) % 100000 end\n"
         "while true do table.sort(t, function(a, b) return a > b end) end"},
        {"string-rep", "while true do local s = string.rep('x', 1 << 20) end"},
        {"gsub-callback", "local s = string.rep('a', 100000) while true do s:gsub('.', function(c) return c end) end"},
    };
    for (const Mode mode : {Mode::Signal, Mode::Hook}) {
        for (const auto &loop : loops) {
            QTest::addRow("%s-%s", mode == Mode::Signal ? "signal" : "hook", loop.first)
                    << mode << QString::fromLatin1(loop.second);
        }
    }
}

void tst_StopMode::loopsStop()
{
    QFETCH(Mode, mode);
    QFETCH(QString, chunk);
    auto isle = spawnIn(mode);
    QFuture<QVariant> f = isle->spawnEval(chunk);
    QThread::msleep(20);
    QVERIFY(!f.isFinished());
    f.cancel();
    // Generous: in hook mode a loop of long C calls is looked at only every
    // hookInterval instructions (seconds under sanitizers).
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 30000);
    QVERIFY(f.isCanceled());
    // The VM serves the next request, with no stop left over.
    QCOMPARE(isle->eval(QStringLiteral("local n = 0 for i = 1, 1e6 do n = n + 1 end return n")),
             QVariant(qlonglong(1000000)));
}

void tst_StopMode::nestedHostCallbackStops()
{
    QFETCH(Mode, mode);
    auto isle = spawnIn(mode);
    QIsle *raw = isle.get();
    // Lua -> C++ -> Lua: the inner loop runs inline, nested in the outer
    // request, and the outer request's cancel stops it.
    isle->registerFunction(QStringLiteral("spin"), [raw](const QVariantList &) {
        return raw->eval(QStringLiteral("while true do end"));
    });
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("spin() return 'not reached'"));
    QThread::msleep(20);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return 7")), QVariant(qlonglong(7)));
}

void tst_StopMode::suspendResume()
{
    QFETCH(Mode, mode);
    auto isle = spawnIn(mode);
    std::atomic<qlonglong> ticks{0};
    isle->registerFunction(QStringLiteral("tick"), [&](const QVariantList &) {
        ++ticks;
        return QVariant();
    });
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("while true do for i = 1, 1000 do end tick() end"));
    QTRY_VERIFY_WITH_TIMEOUT(ticks.load() > 0, 5000);
    f.suspend();
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 5000);
    const qlonglong parked = ticks.load();
    QTest::qWait(50);
    QCOMPARE(ticks.load(), parked);
    f.resume();
    QTRY_VERIFY_WITH_TIMEOUT(ticks.load() > parked, 5000);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
}

void tst_StopMode::timeoutInEachMode()
{
    QFETCH(Mode, mode);
    QIsleOptions options;
    options.timeout = std::chrono::milliseconds(30);
    auto isle = spawnIn(mode, options);
    for (const char *chunk : {"while true do end", "isle.sleep(60000)",
                              "coroutine.wrap(function() while true do end end)()"}) {
        try {
            isle->eval(QString::fromLatin1(chunk));
            QFAIL(chunk);
        } catch (const QIsleError &e) {
            QCOMPARE(e.kind(), QIsleError::Kind::Timeout);
        }
    }
}

void tst_StopMode::nestedRequestTimeout()
{
    // A blocking call made from a host function runs nested; its own
    // timeout is watched while the outer request has none.
    QFETCH(Mode, mode);
    auto isle = spawnIn(mode);
    QIsle *raw = isle.get();
    isle->registerFunction(QStringLiteral("spinWithTimeout"), [raw](const QVariantList &) {
        QIsleRequestOptions options;
        options.timeout = std::chrono::milliseconds(30);
        try {
            raw->eval(QStringLiteral("while true do end"), options);
        } catch (const QIsleError &e) {
            return QVariant(QIsleError::kindName(e.kind()));
        }
        return QVariant(QStringLiteral("not stopped"));
    });
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("return spinWithTimeout()"));
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 10000);
    QCOMPARE(QIsle::waitFor(f), QVariant(QStringLiteral("Timeout")));
}

void tst_StopMode::cancelsRacingCompletion()
{
    // 5,000 requests in a row in each mode; every other one is canceled at
    // a random moment while it runs, around its completion. No stop may land on
    // another request.
    QFETCH(Mode, mode);
    auto isle = spawnIn(mode);
    std::atomic<int> started{0};
    isle->registerFunction(QStringLiteral("started"), [&](const QVariantList &) {
        ++started;
        return QVariant();
    });
    isle->eval(QStringLiteral(
            "function work(n) started() local s = 0 for i = 1, n do s = s + i end return s end"));
    QRandomGenerator random(42);
    int stopped = 0;
    // And as many bystanders: 5,000 requests a mode (fewer under sanitizers,
    // which set QISLE_STRESS_SCALE).
    bool scaled = false;
    const double scale = qEnvironmentVariable("QISLE_STRESS_SCALE").toDouble(&scaled);
    const int Victims = scaled ? qMax(100, int(2500 * scale)) : 2500;
    for (int i = 0; i < Victims; ++i) {
        const int before = started.load();
        QFuture<QVariant> victim = isle->spawnCall(QStringLiteral("work"), {int(random.bounded(1, 400000))});
        QFuture<QVariant> bystander = isle->spawnCall(QStringLiteral("work"), {100});
        QDeadlineTimer deadline(5000);
        while (started.load() == before && !deadline.hasExpired())
            QThread::yieldCurrentThread();
        QThread::usleep(random.bounded(800));
        victim.cancel();
        QCOMPARE(QIsle::waitFor(bystander), QVariant(qlonglong(5050)));
        victim.waitForFinished();
        // Qt 6.4 flags a future canceled even when cancel() came after it
        // finished: whether it holds its result tells which happened.
        if (victim.resultCount() == 0)
            ++stopped;
        else
            QCOMPARE(victim.resultAt(0).toLongLong() > 0, true);
    }
    qInfo("%d of %d victims were stopped while running; the rest finished first", stopped, Victims);
    QVERIFY(stopped > 0);
    QVERIFY(stopped < Victims);
}

namespace {

// A plain C function, as an application registers with <QIsle/QIsleLua>:
// sleeps `ms` in nanosleep, which a signal interrupts (EINTR, SA_RESTART or
// not), and returns how many times it was interrupted.
int sleepCountingSignals(lua_State *L)
{
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(luaL_checkinteger(L, 1));
    lua_Integer interrupted = 0;
    for (;;) {
        const auto left = end - std::chrono::steady_clock::now();
        if (left <= std::chrono::nanoseconds::zero())
            break;
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        timespec ts{time_t(ns / 1000000000), long(ns % 1000000000)};
        if (nanosleep(&ts, nullptr) != 0 && errno == EINTR)
            ++interrupted;
    }
    lua_pushinteger(L, interrupted);
    return 1;
}

} // namespace

void tst_StopMode::dueResultsDoNotFloodALongCFunction()
{
    // A batch of emitted results falls due while the script sits in one
    // long C function, where no hook can run: signal mode's monitor signals
    // the thread, then backs off, instead of a signal every poll (250 us:
    // about 1,200 in these 300 ms). The results come out once it returns.
    auto isle = QIsle::spawn([](lua_State *L) { lua_register(L, "sleepy", sleepCountingSignals); },
                             [] {
                                 QIsleOptions options;
                                 options.stopMode = Mode::Signal;
                                 return options;
                             }());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("for i = 1, 50 do isle.emit(i) end return sleepy(300)"));
    const qlonglong interrupted = QIsle::waitFor(f).toLongLong();
    QCOMPARE(f.resultCount(), 51);
    for (int i = 1; i <= 50; ++i)
        QCOMPARE(f.resultAt(i), QVariant(qlonglong(i)));
    QVERIFY2(interrupted < 40, qPrintable(QStringLiteral("interrupted %1 times").arg(interrupted)));
    if (isle->stopMode() == Mode::Signal)
        QVERIFY(interrupted >= 1); // the monitor did see the batch due
    else
        QCOMPARE(interrupted, 0); // hook mode (a ThreadSanitizer build): nothing signals
}

// A blocking call with no timeout is not watched by the stop monitor while
// it runs (nobody else holds its future); ~QIsle's abort must still stop it.
void tst_StopMode::blockingCallStoppedByDestructor()
{
    QFETCH(Mode, mode);
    auto isle = spawnIn(mode);
    QIsle *raw = isle.get();
    std::atomic<bool> started{false};
    isle->registerFunction(QStringLiteral("started"), [&](const QVariantList &) {
        started = true;
        return QVariant();
    });
    QCOMPARE(isle->eval(QStringLiteral("return 1")).toInt(), 1);
    QThread::msleep(10); // the burst that registered the function is over
    // Atomic: QThread::wait() orders nothing ThreadSanitizer sees.
    std::atomic<int> kind{-1};
    std::unique_ptr<QThread> caller(QThread::create([&] {
        try {
            raw->eval(QStringLiteral("started() while true do end"));
        } catch (const QIsleError &e) {
            kind = int(e.kind());
        }
    }));
    caller->start();
    QTRY_VERIFY_WITH_TIMEOUT(started.load(), 5000);
    QThread::msleep(20); // long under way
    QElapsedTimer timer;
    timer.start();
    isle.reset();
    const qint64 elapsed = timer.elapsed();
    QVERIFY2(elapsed < 1000, qPrintable(QStringLiteral("destructor took %1 ms").arg(elapsed)));
    QVERIFY(caller->wait(5000));
    QCOMPARE(kind.load(), int(QIsleError::Kind::Cancelled));
}

QTEST_GUILESS_MAIN(tst_StopMode)
#include "tst_stopmode.moc"
