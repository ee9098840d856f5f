// shutdown(), the destructor, isAlive(), maxPending.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

class tst_Lifecycle : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void aliveUntilShutdown();
    void shutdownDrainsQueuedWork();
    void requestsAfterShutdownFail();
    void shutdownIsIdempotent();
    void destructorDuringInfiniteLoop();
    void destructorFinishesQueuedFutures();
    void destructorWhileSuspended();
    void busyPastMaxPending();
    void stuckFinalizerIsAbandoned();
};

void tst_Lifecycle::aliveUntilShutdown()
{
    auto isle = QIsle::spawn();
    QVERIFY(isle->isAlive());
    isle->shutdown();
    QVERIFY(!isle->isAlive());
}

void tst_Lifecycle::shutdownDrainsQueuedWork()
{
    auto isle = QIsle::spawn();
    QStringList seen;
    QMutex mutex;
    isle->registerFunction(QStringLiteral("record"), [&](const QVariantList &args) {
        QMutexLocker lock(&mutex);
        seen << args.value(0).toString();
        return QVariant();
    });
    QList<QFuture<QVariant>> futures;
    for (int i = 0; i < 50; ++i)
        futures << isle->spawnEval(QStringLiteral("local s = 0 for i = 1, 1e4 do s = s + i end record('%1')").arg(i));
    isle->shutdown();
    for (const auto &f : futures) {
        QVERIFY(f.isFinished());
        QVERIFY(!f.isCanceled());
    }
    QCOMPARE(seen.size(), 50);
    QCOMPARE(seen.first(), QStringLiteral("0"));
    QCOMPARE(seen.last(), QStringLiteral("49"));
}

void tst_Lifecycle::requestsAfterShutdownFail()
{
    auto isle = QIsle::spawn();
    isle->shutdown();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("return 1"));
    QVERIFY(f.isFinished());
    try {
        f.waitForFinished();
        QFAIL("expected Shutdown");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Shutdown);
    }
    try {
        isle->call(QStringLiteral("print"));
        QFAIL("expected Shutdown");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Shutdown);
    }
    try {
        isle->exec([](lua_State *) { return QVariant(); });
        QFAIL("expected Shutdown");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Shutdown);
    }
}

void tst_Lifecycle::shutdownIsIdempotent()
{
    auto isle = QIsle::spawn();
    isle->shutdown();
    isle->shutdown();
    QVERIFY(!isle->isAlive());
}

void tst_Lifecycle::destructorDuringInfiniteLoop()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("while true do end"));
    QThread::msleep(20);
    QElapsedTimer timer;
    timer.start();
    isle.reset();
    const qint64 elapsed = timer.elapsed();
    QVERIFY2(elapsed < 100, qPrintable(QStringLiteral("destructor took %1 ms").arg(elapsed)));
    QVERIFY(f.isFinished());
    QVERIFY(f.isCanceled());
}

void tst_Lifecycle::destructorFinishesQueuedFutures()
{
    auto isle = QIsle::spawn();
    QList<QFuture<QVariant>> futures;
    futures << isle->spawnEval(QStringLiteral("while true do end"));
    for (int i = 0; i < 100; ++i)
        futures << isle->spawnEval(QStringLiteral("sideEffect = true"));
    QThread::msleep(10);
    isle.reset();
    for (const auto &f : futures) {
        QVERIFY(f.isFinished());
        QVERIFY(f.isCanceled());
    }
}

void tst_Lifecycle::destructorWhileSuspended()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("while true do end"));
    QThread::msleep(10);
    f.suspend();
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 5000);
    QElapsedTimer timer;
    timer.start();
    isle.reset();
    QVERIFY(timer.elapsed() < 100);
    QVERIFY(f.isFinished());
}

void tst_Lifecycle::busyPastMaxPending()
{
    QIsleOptions options;
    options.maxPending = 3;
    auto isle = QIsle::spawn({}, options);
    QFuture<QVariant> running = isle->spawnEval(QStringLiteral("while true do end"));
    QThread::msleep(20); // it left the queue: it runs
    QList<QFuture<QVariant>> queued;
    for (int i = 0; i < 3; ++i)
        queued << isle->spawnEval(QStringLiteral("return %1").arg(i));
    QFuture<QVariant> refused = isle->spawnEval(QStringLiteral("refusedRan = true"));
    QVERIFY(refused.isFinished());
    try {
        refused.waitForFinished();
        QFAIL("expected Busy");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Busy);
    }
    running.cancel();
    for (int i = 0; i < 3; ++i)
        QCOMPARE(QIsle::waitFor(queued[i]), QVariant(qlonglong(i)));
    QCOMPARE(isle->eval(QStringLiteral("return refusedRan")), QVariant());
}

void tst_Lifecycle::stuckFinalizerIsAbandoned()
{
    QIsleOptions options;
    options.shutdownTimeout = std::chrono::milliseconds(200);
    auto isle = QIsle::spawn({}, options);
    // __gc runs with hooks off: nothing can stop it. Shutdown must still end.
    isle->eval(QStringLiteral("setmetatable({}, { __gc = function() while true do end end })"));
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("abandoning")));
    QElapsedTimer timer;
    timer.start();
    isle->shutdown();
    QVERIFY2(timer.elapsed() < 2000, qPrintable(QString::number(timer.elapsed())));
    QVERIFY(!isle->isAlive());
}

QTEST_GUILESS_MAIN(tst_Lifecycle)
#include "tst_lifecycle.moc"
