// Cancellation, suspension and timeouts through the stop machinery.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

class tst_Cancel : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void cancelRunningLoops_data();
    void cancelRunningLoops();
    void blockingCallerGetsCancelled();
    void queuedCancelNeverRuns();
    void stateKeptAfterCancel();
    void canceledInCleanup();
    void suspendAndResume();
    void cancelWhileSuspended();
    void timeout();
    void perRequestIsolation();
};

void tst_Cancel::cancelRunningLoops_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addRow("while") << "while true do end";
    QTest::addRow("repeat") << "local n = 0 repeat n = n + 1 until false";
    QTest::addRow("pcall") << "while true do pcall(function() while true do end end) end";
    QTest::addRow("pcall-error") << "while true do pcall(error, 'x') end";
    QTest::addRow("xpcall-looping-handler")
            << "while true do xpcall(function() while true do end end, function(m) while true do end end) end";
    QTest::addRow("coroutine") << "local co = coroutine.create(function() while true do end end) coroutine.resume(co)";
    QTest::addRow("coroutine-yielding")
            << "local co = coroutine.create(function() while true do coroutine.yield() end end)\n"
               "while true do coroutine.resume(co) end";
    QTest::addRow("nested-coroutines")
            << "local inner = coroutine.wrap(function() while true do end end)\n"
               "local outer = coroutine.create(function() inner() end)\n"
               "while true do coroutine.resume(outer) end";
    QTest::addRow("sort-comparator")
            << "local t = {} for i = 1, 200000 do t[i] = (i * 7919) % 200000 end\n"
               "while true do table.sort(t, function(a, b) return a > b end) end";
    QTest::addRow("recursion") << "local function f(n) return f(n + 1) + 1 end while true do pcall(f, 1) end";
}

void tst_Cancel::cancelRunningLoops()
{
    QFETCH(QString, chunk);
    auto isle = QIsle::spawn();
    std::atomic<bool> running{false};
    isle->registerFunction(QStringLiteral("running"), [&](const QVariantList &) {
        running = true;
        return QVariant();
    });
    isle->eval(QStringLiteral("started = false"));
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("started = true running()\n") + chunk);
    // A loaded machine may not have started it yet: cancel it while it runs.
    QTRY_VERIFY_WITH_TIMEOUT(running.load(), 10000);
    QThread::msleep(10);
    QVERIFY(!f.isFinished());
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return started")), QVariant(true));
    QCOMPARE(isle->eval(QStringLiteral("return 1 + 1")), QVariant(qlonglong(2)));
}

void tst_Cancel::blockingCallerGetsCancelled()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("while true do end"));
    QTimer::singleShot(20, [f]() mutable { f.cancel(); });
    bool cancelled = false;
    // waitFor is what eval/call/exec use: it must not read a missing result.
    QTRY_VERIFY_WITH_TIMEOUT(f.isCanceled(), 5000);
    try {
        QIsle::waitFor(f);
    } catch (const QIsleError &e) {
        cancelled = e.kind() == QIsleError::Kind::Cancelled;
    }
    QVERIFY(cancelled);
}

void tst_Cancel::queuedCancelNeverRuns()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> loop = isle->spawnEval(QStringLiteral("while true do end"));
    QFuture<QVariant> queued = isle->spawnEval(QStringLiteral("sideEffect = true"));
    queued.cancel();
    loop.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(loop.isFinished() && queued.isFinished(), 5000);
    QVERIFY(queued.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return sideEffect")), QVariant());
}

void tst_Cancel::stateKeptAfterCancel()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("before = 'kept' while true do end"));
    QThread::msleep(20);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QCOMPARE(isle->eval(QStringLiteral("return before")), QVariant(QStringLiteral("kept")));
}

void tst_Cancel::canceledInCleanup()
{
    auto isle = QIsle::spawn();
    QCOMPARE(isle->eval(QStringLiteral("return isle.canceled()")), QVariant(false));
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "local ok = pcall(function() while true do end end)"));
    QThread::msleep(20);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
}

void tst_Cancel::suspendAndResume()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("counter = 0"));
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("while true do counter = counter + 1 end"));
    QThread::msleep(20);
    f.suspend();
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 5000);
    QFuture<QVariant> probe = isle->spawnEval(QStringLiteral("return counter"));
    QThread::msleep(50);
    QVERIFY2(!probe.isFinished(), "a suspended request still holds the VM");
    f.resume();
    QThread::msleep(20);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished() && probe.isFinished(), 5000);
    const qlonglong after = probe.result().toLongLong();
    QVERIFY(after > 0);
}

void tst_Cancel::cancelWhileSuspended()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("while true do end"));
    QThread::msleep(10);
    f.suspend();
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 5000);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return 5")), QVariant(qlonglong(5)));
}

void tst_Cancel::timeout()
{
    QIsleOptions options;
    options.timeout = std::chrono::milliseconds(50);
    auto isle = QIsle::spawn({}, options);
    QElapsedTimer timer;
    timer.start();
    try {
        isle->eval(QStringLiteral("while true do end"));
        QFAIL("expected a timeout");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Timeout);
    }
    QVERIFY(timer.elapsed() >= 45);
    QVERIFY(timer.elapsed() < 3000);
    // Each request has its own budget.
    QCOMPARE(isle->eval(QStringLiteral("return 'next'")), QVariant(QStringLiteral("next")));
}

void tst_Cancel::perRequestIsolation()
{
    // Stops racing completion never leak into the next request.
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("function work(n) local s = 0 for i = 1, n do s = s + i end return s end"));
    int canceled = 0;
    int completed = 0;
    for (int i = 0; i < 2000; ++i) {
        QFuture<QVariant> a = isle->spawnCall(QStringLiteral("work"), {200 + (i % 50) * 40});
        QFuture<QVariant> b = isle->spawnCall(QStringLiteral("work"), {100});
        a.cancel();
        QIsle::waitFor(b); // b is never hit by a's stop
        QCOMPARE(b.result(), QVariant(qlonglong(5050)));
        a.waitForFinished();
        (a.isCanceled() ? canceled : completed)++;
    }
    QCOMPARE(canceled + completed, 2000);
}

QTEST_GUILESS_MAIN(tst_Cancel)
#include "tst_cancel.moc"
