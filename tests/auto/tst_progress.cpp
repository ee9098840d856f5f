// The Lua side of a request: isle.progress, isle.emit, isle.sleep,
// isle.canceled, and suspend/resume, as a QFutureWatcher sees them.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

#include <ctime>

Q_DECLARE_METATYPE(QIsleOptions::StopMode)

namespace {

// Counts timer ticks of the test's own (GUI) thread: ticks while a script
// floods the future with notifications show the thread still serves events.
class Heartbeat : public QObject
{
public:
    Heartbeat()
    {
        connect(&timer, &QTimer::timeout, this, [this] {
            if (last.isValid())
                longestGapMs = qMax(longestGapMs, last.elapsed());
            last.start();
            ++ticks;
        });
        timer.start(5);
    }
    QTimer timer;
    QElapsedTimer last;
    qint64 longestGapMs = 0;
    int ticks = 0;
};

// Starts chunk once watcher watches it: a gate request holds the VM until
// then, so no notification is replayed instead of sent.
void watchFromStart(QIsle &isle, QFutureWatcher<QVariant> &watcher, const QString &chunk)
{
    auto gate = std::make_shared<QSemaphore>();
    (void)isle.spawnExec([gate](lua_State *) {
        gate->acquire();
        return QVariant();
    });
    watcher.setFuture(isle.spawnEval(chunk));
    gate->release();
}

// Counts isle's printed lines, which must read 1, 2, 3...; each costs the
// slot about 20 us, so a flood of them is delivered in slices.
struct SlowPrintCounter
{
    explicit SlowPrintCounter(QIsle &isle)
    {
        QObject::connect(&isle, &QIsle::printed, &isle, [this](const QString &line) {
            inOrder = inOrder && line == QString::number(received + 1);
            ++received;
            QElapsedTimer busy;
            busy.start();
            while (busy.nsecsElapsed() < 20000) { }
        });
    }
    int received = 0;
    bool inOrder = true;
};

} // namespace

class tst_Progress : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void progressSeenByWatcher();
    void progressArguments_data();
    void progressArguments();
    void progressFloodIsThrottled();
    void emitsInOrder();
    void emitReadyAtWhileRunning();
    void emitAvailableWhileRunning();
    void emitKeepsResultZero();
    void emitFloodKeepsThreadResponsive();
    void emitUnconvertibleIsConversion();
    void emitBatchSeenWhileComputing_data();
    void emitBatchSeenWhileComputing();
    void emitFloodAnnouncesEachOnceInOrder();
    void emitsBeforeProgressAreReadyFirst();
    void emitsBeforeSuspendAreReady();
    void printFloodInOrderWithSlowSlot();
    void printsArriveBeforeTheFinish();
    void shutdownEmitsEveryPrintLeft();
    void emitsBeforeAPrintAreReadyFirst();
    void emitsBeforeAHostCallAreReadyDuringIt();
    void suspendStopsCounter();
    void sleepWakesOnCancel();
    void sleepWakesOnCancelWhileSuspended();
    void sleepDoesNotSpin();
    void sleepReturns();
    void canceledInCloseHandler();
    void outsideRequest();
};

void tst_Progress::progressSeenByWatcher()
{
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    QSignalSpy range(&watcher, &QFutureWatcherBase::progressRangeChanged);
    QSignalSpy value(&watcher, &QFutureWatcherBase::progressValueChanged);
    QSignalSpy text(&watcher, &QFutureWatcherBase::progressTextChanged);
    QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
    // Sleeps let each step out past Qt's progress throttle (25 a second).
    watchFromStart(*isle, watcher, QStringLiteral(
            "isle.progress(0, 10, 'start')\n"
            "for i = 1, 10 do isle.sleep(50) isle.progress(i, 10, 'step ' .. i) end\n"
            "return 'done'"));
    QVERIFY(finished.wait(10000));
    QCOMPARE(watcher.future().result(), QVariant(QStringLiteral("done")));
    QVERIFY(range.size() >= 1);
    QCOMPARE(range.constLast().at(0).toInt(), 0);
    QCOMPARE(range.constLast().at(1).toInt(), 10);
    QVERIFY2(value.size() >= 5, qPrintable(QString::number(value.size())));
    int previous = -1;
    for (const QList<QVariant> &args : std::as_const(value)) {
        QVERIFY(args.at(0).toInt() > previous);
        previous = args.at(0).toInt();
    }
    QCOMPARE(previous, 10); // the maximum is never throttled away
    QVERIFY(!text.isEmpty());
    QCOMPARE(text.constLast().at(0).toString(), QStringLiteral("step 10"));
    QCOMPARE(watcher.progressValue(), 10);
}

void tst_Progress::progressArguments_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<int>("minimum");
    QTest::addColumn<int>("maximum");
    QTest::addColumn<int>("value");
    QTest::addColumn<QString>("text");
    QTest::addRow("value only") << "isle.progress(3)" << 0 << 0 << 3 << "";
    QTest::addRow("range") << "isle.progress(3, 8)" << 0 << 8 << 3 << "";
    QTest::addRow("text") << "isle.progress(3, 8, 'hello')" << 0 << 8 << 3 << "hello";
    QTest::addRow("float truncates") << "isle.progress(2.75, 4.5)" << 0 << 4 << 2 << "";
    QTest::addRow("past maximum") << "isle.progress(12, 10)" << 0 << 10 << 10 << "";
    QTest::addRow("negative") << "isle.progress(-5, 10)" << 0 << 10 << 0 << "";
    QTest::addRow("huge") << "isle.progress(1e300)" << 0 << 0 << INT_MAX << "";
    QTest::addRow("text kept") << "isle.progress(1, 10, 'a') isle.progress(2)" << 0 << 10 << 2 << "a";
    QTest::addRow("start over") << "isle.progress(9, 10) isle.progress(1, 10)" << 0 << 10 << 1 << "";
    QTest::addRow("new range") << "isle.progress(9, 10) isle.progress(5, 100)" << 0 << 100 << 5 << "";
}

void tst_Progress::progressArguments()
{
    QFETCH(QString, chunk);
    QFETCH(int, minimum);
    QFETCH(int, maximum);
    QFETCH(int, value);
    QFETCH(QString, text);
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(chunk);
    QIsle::waitFor(f);
    QCOMPARE(f.progressMinimum(), minimum);
    QCOMPARE(f.progressMaximum(), maximum);
    QCOMPARE(f.progressValue(), value);
    QCOMPARE(f.progressText(), text);
}

void tst_Progress::progressFloodIsThrottled()
{
    // A script calling isle.progress in a tight loop must not flood the
    // receiving thread: count the signals, and check the thread's own timer
    // keeps ticking while the loop runs.
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    int values = 0;
    int ranges = 0;
    int texts = 0;
    connect(&watcher, &QFutureWatcherBase::progressValueChanged, this, [&] { ++values; });
    connect(&watcher, &QFutureWatcherBase::progressRangeChanged, this, [&] { ++ranges; });
    connect(&watcher, &QFutureWatcherBase::progressTextChanged, this, [&] { ++texts; });
    constexpr int Calls = 1000000;
    Heartbeat heartbeat;
    QElapsedTimer elapsed;
    elapsed.start();
    watchFromStart(*isle, watcher, QStringLiteral(
            "local n = %1\n"
            "for i = 1, n do isle.progress(i, n, 'item') end\n"
            "return n").arg(Calls));
    QTRY_VERIFY_WITH_TIMEOUT(watcher.isFinished(), 60000);
    QCoreApplication::processEvents(); // the last notifications
    QCOMPARE(watcher.future().result(), QVariant(qlonglong(Calls)));
    qInfo("%d isle.progress calls in %lld ms: %d value, %d range, %d text signals; "
          "%d timer ticks, longest gap %lld ms",
          Calls, elapsed.elapsed(), values, ranges, texts, heartbeat.ticks, heartbeat.longestGapMs);
    // One replayed when the watcher connects (0..0: a started future), one set.
    QCOMPARE(ranges, 2);
    // Qt's throttle is ~25 a second; bound it by the run time, generously.
    const int bound = int(elapsed.elapsed() / 10) + 10;
    QVERIFY2(values <= bound, qPrintable(QStringLiteral("%1 > %2").arg(values).arg(bound)));
    QVERIFY(values >= 1);
    QCOMPARE(watcher.progressValue(), Calls);
}

void tst_Progress::emitsInOrder()
{
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    // Each emit is announced at once as resultReadyAt(i), i = 1..n, in order;
    // the return value arrives last, as resultReadyAt(0).
    QList<int> ready;
    QVariantList values;
    connect(&watcher, &QFutureWatcherBase::resultReadyAt, this, [&](int index) {
        ready.append(index);
        values.append(watcher.future().resultAt(index));
    });
    QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
    watchFromStart(*isle, watcher, QStringLiteral(
            "for i = 1, 5 do isle.emit('r' .. i) end\n"
            "isle.emit({a = 1})\n"
            "return 'last'"));
    QVERIFY(finished.wait(10000));
    QCOMPARE(ready, (QList<int>{1, 2, 3, 4, 5, 6, 0}));
    for (int i = 0; i < 5; ++i)
        QCOMPARE(values.at(i), QVariant(QStringLiteral("r%1").arg(i + 1)));
    QCOMPARE(values.at(5).toMap().value(QStringLiteral("a")), QVariant(qlonglong(1)));
    QCOMPARE(values.at(6), QVariant(QStringLiteral("last")));
    const QFuture<QVariant> f = watcher.future();
    QCOMPARE(f.resultCount(), 7);
    QCOMPARE(f.resultAt(0), QVariant(QStringLiteral("last")));
}

void tst_Progress::emitReadyAtWhileRunning()
{
    // resultReadyAt(1) arrives while the script still runs (it sleeps).
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    QSignalSpy ready(&watcher, &QFutureWatcherBase::resultReadyAt);
    watchFromStart(*isle, watcher, QStringLiteral("isle.emit('first') isle.sleep(60000)"));
    QTRY_COMPARE_WITH_TIMEOUT(ready.size(), 1, 5000);
    QCOMPARE(ready.at(0).at(0).toInt(), 1);
    QVERIFY(!watcher.isFinished());
    QCOMPARE(watcher.future().resultAt(1), QVariant(QStringLiteral("first")));
    watcher.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(watcher.isFinished(), 5000);
}

void tst_Progress::emitAvailableWhileRunning()
{
    // Without any watcher: an emitted value is in the future before the
    // script goes on.
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("isle.emit('first') isle.sleep(60000)"));
    QTRY_VERIFY_WITH_TIMEOUT(f.isResultReadyAt(1), 5000);
    QCOMPARE(f.resultAt(1), QVariant(QStringLiteral("first")));
    QVERIFY(!f.isFinished());
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
}

void tst_Progress::emitKeepsResultZero()
{
    auto isle = QIsle::spawn();
    QCOMPARE(isle->eval(QStringLiteral("isle.emit(1) isle.emit(2) return 'value'")),
             QVariant(QStringLiteral("value")));
    QFuture<QVariant> nothing = isle->spawnEval(QStringLiteral("isle.emit(1)"));
    QCOMPARE(QIsle::waitFor(nothing), QVariant());
    QCOMPARE(nothing.resultAt(1), QVariant(qlonglong(1)));
}

void tst_Progress::emitFloodKeepsThreadResponsive()
{
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    int highest = 0;
    int events = 0;
    connect(&watcher, &QFutureWatcherBase::resultsReadyAt, this, [&](int begin, int end) {
        highest = qMax(highest, end - 1);
        ++events;
    });
    constexpr int Emits = 100000;
    Heartbeat heartbeat;
    QElapsedTimer elapsed;
    elapsed.start();
    watchFromStart(*isle, watcher, QStringLiteral(
            "for i = 1, %1 do isle.emit(i) end return 'done'").arg(Emits));
    QTRY_VERIFY_WITH_TIMEOUT(watcher.isFinished(), 60000);
    QTRY_COMPARE_WITH_TIMEOUT(highest, Emits, 30000);
    qInfo("%d isle.emit calls delivered in %lld ms (%d events); %d timer ticks, longest gap %lld ms",
          Emits, elapsed.elapsed(), events, heartbeat.ticks, heartbeat.longestGapMs);
    QVERIFY(heartbeat.ticks > 0);
    QCOMPARE(watcher.future().resultAt(Emits), QVariant(qlonglong(Emits)));
    QCOMPARE(watcher.future().resultAt(0), QVariant(QStringLiteral("done")));
}

void tst_Progress::emitUnconvertibleIsConversion()
{
    auto isle = QIsle::spawn();
    try {
        isle->eval(QStringLiteral("isle.emit(function() end)"));
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
    }
}

void tst_Progress::suspendStopsCounter()
{
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    QSignalSpy suspended(&watcher, &QFutureWatcherBase::suspended);
    QSignalSpy resumed(&watcher, &QFutureWatcherBase::resumed);
    // The counter is read through progress, without touching the busy VM.
    watchFromStart(*isle, watcher, QStringLiteral(
            "local n = 0 while true do n = n + 1 isle.progress(n) end"));
    QFuture<QVariant> f = watcher.future();
    QTRY_VERIFY_WITH_TIMEOUT(f.progressValue() > 0, 5000);
    f.suspend();
    QVERIFY(suspended.wait(5000));
    QVERIFY(f.isSuspended());
    const int atSuspend = f.progressValue();
    QTest::qWait(100);
    QCOMPARE(f.progressValue(), atSuspend);

    f.resume();
    QTRY_VERIFY_WITH_TIMEOUT(f.progressValue() > atSuspend, 5000);
    QVERIFY(resumed.size() >= 1 || !f.isSuspended());
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
}

void tst_Progress::sleepWakesOnCancel()
{
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
    watchFromStart(*isle, watcher, QStringLiteral("started = true isle.sleep(60000)"));
    QTest::qWait(30);
    QFuture<QVariant> f = watcher.future();
    QVERIFY(!f.isFinished());
    QElapsedTimer timer;
    timer.start();
    f.cancel();
    QVERIFY(finished.wait(5000));
    qInfo("isle.sleep woke %lld ms after cancel", timer.elapsed());
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return started")), QVariant(true));
}

void tst_Progress::sleepWakesOnCancelWhileSuspended()
{
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    QSignalSpy suspended(&watcher, &QFutureWatcherBase::suspended);
    watchFromStart(*isle, watcher, QStringLiteral("isle.sleep(60000)"));
    QTest::qWait(30);
    QFuture<QVariant> f = watcher.future();
    f.suspend();
    QVERIFY(suspended.wait(5000));
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return 1")), QVariant(qlonglong(1)));
}

void tst_Progress::sleepDoesNotSpin()
{
    // CPU time of the Lua thread itself while the script sleeps.
    auto isle = QIsle::spawn();
    isle->registerFunction(QStringLiteral("threadCpuMs"), [](const QVariantList &) {
        timespec t{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return QVariant(double(t.tv_sec) * 1000 + double(t.tv_nsec) / 1e6);
    });
    QElapsedTimer wall;
    wall.start();
    const double cpuMs = isle->eval(QStringLiteral(
            "local before = threadCpuMs() isle.sleep(400) return threadCpuMs() - before")).toDouble();
    const qint64 wallMs = wall.elapsed();
    qInfo("isle.sleep(400): %lld ms wall, %.1f ms CPU on the Lua thread", wallMs, cpuMs);
    QVERIFY(wallMs >= 395);
    // Spinning would cost about the wall time; slices cost a few percent
    // (more under sanitizers and load): half is a loose, safe line.
    QVERIFY2(cpuMs * 2 < wallMs, qPrintable(QStringLiteral("%1 ms CPU").arg(cpuMs)));
}

void tst_Progress::sleepReturns()
{
    auto isle = QIsle::spawn();
    QCOMPARE(isle->eval(QStringLiteral("isle.sleep(0) isle.sleep(-1) isle.sleep(0 / 0) isle.sleep(5) return 'woke'")),
             QVariant(QStringLiteral("woke")));
    // A timeout wakes it too.
    QIsleOptions options;
    options.timeout = std::chrono::milliseconds(50);
    auto limited = QIsle::spawn({}, options);
    try {
        limited->eval(QStringLiteral("isle.sleep(math.huge)"));
        QFAIL("expected a timeout");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Timeout);
    }
}

void tst_Progress::canceledInCloseHandler()
{
    auto isle = QIsle::spawn();
    std::atomic<bool> started{false};
    isle->registerFunction(QStringLiteral("started"), [&](const QVariantList &) {
        started = true;
        return QVariant();
    });
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "local guard <close> = setmetatable({}, {__close = function()\n"
            "  cleanupSaw = isle.canceled()\n"
            "end})\n"
            "seenBefore = isle.canceled()\n"
            "started()\n"
            "while true do end"));
    // Canceled while still queued it would never run: wait until it runs.
    QTRY_VERIFY_WITH_TIMEOUT(started.load(), 10000);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QCOMPARE(isle->eval(QStringLiteral("return seenBefore")), QVariant(false));
    QCOMPARE(isle->eval(QStringLiteral("return cleanupSaw")), QVariant(true));
    // A script may also poll it and end on its own terms.
    QFuture<QVariant> polite = isle->spawnEval(QStringLiteral(
            "while not isle.canceled() do end politeEnd = true"));
    QTest::qWait(30);
    polite.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(polite.isFinished(), 5000);
    QVERIFY(polite.isCanceled());
}

void tst_Progress::outsideRequest()
{
    // The isle table works in init (spawn's own request) and fails cleanly
    // when called from a coroutine that outlives its request.
    auto isle = QIsle::spawn([](lua_State *) {});
    QCOMPARE(isle->eval(QStringLiteral("return type(isle.progress)")), QVariant(QStringLiteral("function")));
    try {
        isle->eval(QStringLiteral("isle.progress('x')"));
        QFAIL("expected a Runtime error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QCOMPARE(e.line(), 1);
    }
}

void tst_Progress::emitBatchSeenWhileComputing_data()
{
    QTest::addColumn<QIsleOptions::StopMode>("mode");
    QTest::addRow("signal") << QIsleOptions::StopMode::Signal;
    QTest::addRow("hook") << QIsleOptions::StopMode::Hook;
}

void tst_Progress::emitBatchSeenWhileComputing()
{
    // Emits in a burst gather into a batch; a script that then computes on
    // without waiting still gets its last results out, within about a
    // millisecond (signal mode: the monitor arms the hook; hook mode: the hook).
    QFETCH(QIsleOptions::StopMode, mode);
    QIsleOptions options;
    options.stopMode = mode;
    auto isle = QIsle::spawn({}, options);
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "for i = 1, 50 do isle.emit(i) end while true do end"));
    QTRY_VERIFY_WITH_TIMEOUT(f.isResultReadyAt(50), 5000);
    QVERIFY(!f.isFinished());
    for (int i = 1; i <= 50; ++i)
        QCOMPARE(f.resultAt(i), QVariant(qlonglong(i)));
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
}

void tst_Progress::emitFloodAnnouncesEachOnceInOrder()
{
    // Batches: fewer events than results, each index announced exactly once,
    // in order, every value as emitted, from the request and from a task.
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    QList<int> announced;
    int batches = 0;
    connect(&watcher, &QFutureWatcherBase::resultsReadyAt, this, [&](int begin, int end) {
        ++batches;
        for (int i = begin; i < end; ++i)
            announced.append(i);
    });
    // The watcher's finished signal, not isFinished(): that reads the future
    // at once, before queued resultsReadyAt notifications may have run.
    QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
    constexpr int Emits = 20000;
    watchFromStart(*isle, watcher, QStringLiteral(
            "local t = isle.spawn(function() for i = 1, %1 do isle.emit('t' .. i) end end)\n"
            "t:join()\n"
            "for i = 1, %1 do isle.emit(i) end\n"
            "return 'done'").arg(Emits));
    QVERIFY(finished.wait(30000));
    const QFuture<QVariant> f = watcher.future();
    QCOMPARE(f.resultAt(0), QVariant(QStringLiteral("done")));
    QCOMPARE(f.resultCount(), 2 * Emits + 1);
    QCOMPARE(announced.size(), 2 * Emits + 1);
    for (int i = 0; i < 2 * Emits; ++i)
        QCOMPARE(announced.at(i), i + 1);
    QCOMPARE(announced.constLast(), 0);
    for (int i = 1; i <= Emits; ++i) {
        QCOMPARE(f.resultAt(i), QVariant(QStringLiteral("t%1").arg(i)));
        QCOMPARE(f.resultAt(Emits + i), QVariant(qlonglong(i)));
    }
    QVERIFY2(batches < Emits, qPrintable(QString::number(batches)));
}

void tst_Progress::emitsBeforeProgressAreReadyFirst()
{
    // Results emitted before a progress report are in the future before it.
    auto isle = QIsle::spawn();
    QFutureWatcher<QVariant> watcher;
    bool sawProgress = false;
    bool readyAtProgress = false;
    // 5000: a value the script's own report alone gives. Until a script
    // reports progress, Qt counts results as progress (1, 2, ...), and the
    // slot may see those while the loop still runs. At its maximum, so Qt's
    // throttling (25 a second) does not hold it back.
    connect(&watcher, &QFutureWatcherBase::progressValueChanged, this, [&](int value) {
        if (value == 5000) {
            sawProgress = true;
            readyAtProgress = watcher.future().isResultReadyAt(1000);
        }
    });
    watchFromStart(*isle, watcher, QStringLiteral(
            "for i = 1, 1000 do isle.emit(i) end isle.progress(5000, 5000) isle.sleep(60000)"));
    // The signal, not progressValue(): that reads the future at once, before
    // the watcher's queued notification has run the slot.
    QTRY_VERIFY_WITH_TIMEOUT(sawProgress, 5000);
    QVERIFY(readyAtProgress);
    watcher.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(watcher.isFinished(), 5000);
}

void tst_Progress::emitsBeforeSuspendAreReady()
{
    // A paused request has reported every result it emitted.
    // The pause may come in the middle of the loop (the first result is out
    // at once): what counts is that every result emitted before it is there.
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "for i = 1, 1000 do isle.emit(i) emitted = i end while true do end"));
    QTRY_VERIFY_WITH_TIMEOUT(f.isResultReadyAt(1), 5000);
    f.suspend();
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 5000);
    int ready = 0;
    while (ready < 1000 && f.isResultReadyAt(ready + 1))
        ++ready;
    QVERIFY(!f.isResultReadyAt(ready + 1)); // no hole: nothing past the first missing one
    QCOMPARE(f.resultAt(ready), QVariant(qlonglong(ready)));
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    const qlonglong emitted = isle->eval(QStringLiteral("return emitted")).toLongLong();
    QVERIFY2(ready >= emitted, qPrintable(QStringLiteral("%1 ready, %2 emitted").arg(ready).arg(emitted)));
}

void tst_Progress::printFloodInOrderWithSlowSlot()
{
    // print() lines reach QIsle::printed in order, every one, and a slot too
    // slow for the flood does not hold the thread: delivery goes in slices
    // and the thread's timer keeps ticking between them.
    auto isle = QIsle::spawn();
    constexpr int Lines = 20000;
    SlowPrintCounter counter(*isle);
    const QVariant done = isle->eval(QStringLiteral("for i = 1, %1 do print(i) end return true").arg(Lines));
    QCOMPARE(done, QVariant(true));
    Heartbeat heartbeat;
    QTRY_COMPARE_WITH_TIMEOUT(counter.received, Lines, 60000);
    QVERIFY(counter.inOrder);
    qInfo("%d lines through a 20 us slot: %d timer ticks, longest gap %lld ms",
          Lines, heartbeat.ticks, heartbeat.longestGapMs);
    // 0.4 s of slot work: a 5 ms timer ticks between slices.
    QVERIFY2(heartbeat.ticks >= 5, qPrintable(QString::number(heartbeat.ticks)));
}

void tst_Progress::printsArriveBeforeTheFinish()
{
    // A request's prints reach printed before its future's finished
    // notification, even when they arrive in slices (a flood).
    auto isle = QIsle::spawn();
    constexpr int Lines = 20000;
    int received = 0;
    connect(isle.get(), &QIsle::printed, this, [&](const QString &) { ++received; });
    QFutureWatcher<QVariant> watcher;
    int receivedAtFinish = -1;
    connect(&watcher, &QFutureWatcherBase::finished, this, [&] { receivedAtFinish = received; });
    watchFromStart(*isle, watcher, QStringLiteral("for i = 1, %1 do print(i) end return true").arg(Lines));
    QTRY_VERIFY_WITH_TIMEOUT(receivedAtFinish >= 0, 30000);
    QCOMPARE(receivedAtFinish, Lines);
}

void tst_Progress::shutdownEmitsEveryPrintLeft()
{
    // A program with no event loop after its last blocking call (a command
    // line runner): one sendPostedEvents() emits only the first slice of a
    // flood, and shutdown() in the isle's thread emits the rest, in order.
    auto isle = QIsle::spawn();
    constexpr int Lines = 5000; // 0.1 s of slot work, past the 20 ms a slice may hold
    SlowPrintCounter counter(*isle);
    QCOMPARE(isle->eval(QStringLiteral("for i = 1, %1 do print(i) end return true").arg(Lines)), QVariant(true));
    QCoreApplication::sendPostedEvents();
    QVERIFY2(counter.received < Lines, qPrintable(QString::number(counter.received))); // sliced: the case shown
    isle->shutdown();
    QCOMPARE(counter.received, Lines);
    QVERIFY(counter.inOrder);
    isle->shutdown(); // again: nothing left, nothing twice
    QCoreApplication::sendPostedEvents();
    QCOMPARE(counter.received, Lines);
}

void tst_Progress::emitsBeforeAPrintAreReadyFirst()
{
    // Results emitted before a print are announced before the line arrives,
    // though emits go to the future in batches.
    auto isle = QIsle::spawn();
    constexpr int Emits = 10000;
    QFutureWatcher<QVariant> watcher;
    int announced = 0;
    connect(&watcher, &QFutureWatcherBase::resultsReadyAt, this, [&](int begin, int end) { announced += end - begin; });
    int announcedAtPrint = -1;
    connect(isle.get(), &QIsle::printed, this, [&](const QString &) {
        if (announcedAtPrint < 0)
            announcedAtPrint = announced;
    });
    QSignalSpy finished(&watcher, &QFutureWatcherBase::finished); // delivered after the print
    watchFromStart(*isle, watcher, QStringLiteral(
            "for i = 1, %1 do isle.emit(i) end print('after') for i = 1, 1e6 do end return true").arg(Emits));
    QVERIFY(finished.wait(30000));
    QCOMPARE(announcedAtPrint, Emits);
}

void tst_Progress::emitsBeforeAHostCallAreReadyDuringIt()
{
    // A batch of emits is not held back by a long host function call: the
    // function itself sees the results in the future while it runs.
    auto isle = QIsle::spawn();
    auto future = std::make_shared<QFuture<QVariant>>();
    isle->registerFunction(QStringLiteral("waitForEmits"), [future](const QVariantList &) {
        QElapsedTimer waited;
        waited.start();
        while (!future->isResultReadyAt(3) && waited.elapsed() < 5000)
            QThread::msleep(1);
        return QVariant(future->isResultReadyAt(3));
    });
    auto gate = std::make_shared<QSemaphore>();
    (void)isle->spawnExec([gate](lua_State *) {
        gate->acquire();
        return QVariant();
    });
    *future = isle->spawnEval(QStringLiteral("isle.emit(1) isle.emit(2) isle.emit(3) return waitForEmits()"));
    gate->release();
    QTRY_VERIFY_WITH_TIMEOUT(future->isFinished(), 10000);
    QCOMPARE(future->resultAt(0), QVariant(true));
}

QTEST_GUILESS_MAIN(tst_Progress)
#include "tst_progress.moc"
