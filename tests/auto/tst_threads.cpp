// Every public member from any thread at once; inline blocking calls.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

#include <thread>
#include <vector>

class tst_Threads : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void manyThreadsBlockingEvals();
    void mixedFromManyThreads();
    void blockingCallFromLuaThreadRunsInline();
    void nestedCallSeesErrors();
    void spawnFromLuaThreadIsQueued();
    void lowLatencySpin();
};

void tst_Threads::manyThreadsBlockingEvals()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("function square(x) return x * x end"));
    constexpr int Threads = 8;
    constexpr int PerThread = 500;
    std::atomic<int> wrong{0};
    std::atomic<int> done{0};
    QList<QThread *> threads;
    for (int t = 0; t < Threads; ++t) {
        threads << QThread::create([&, t] {
            for (int i = 0; i < PerThread; ++i) {
                const int x = t * 1000 + i;
                QVariant r = (i % 2) ? isle->eval(QStringLiteral("return square(%1)").arg(x))
                                     : isle->call(QStringLiteral("square"), {x});
                if (r != QVariant(qlonglong(x) * x))
                    ++wrong;
                ++done;
            }
        });
        threads.last()->start();
    }
    for (QThread *thread : threads) {
        QVERIFY(thread->wait(60000));
        delete thread;
    }
    QCOMPARE(done.load(), Threads * PerThread);
    QCOMPARE(wrong.load(), 0);
}

void tst_Threads::mixedFromManyThreads()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("total = 0"));
    constexpr int Threads = 8;
    std::atomic<int> errors{0};
    QList<QThread *> threads;
    for (int t = 0; t < Threads; ++t) {
        threads << QThread::create([&, t] {
            isle->registerFunction(QStringLiteral("f%1").arg(t), [t](const QVariantList &a) {
                return QVariant(a.value(0).toLongLong() + t);
            });
            QList<QFuture<QVariant>> futures;
            for (int i = 0; i < 200; ++i) {
                futures << isle->spawnEval(QStringLiteral("total = total + 1"));
                futures << isle->spawnCall(QStringLiteral("f%1").arg(t), {i});
                futures << isle->spawnExec([](lua_State *) { return QVariant(true); });
                QFuture<QVariant> canceled = isle->spawnEval(QStringLiteral("total = total + 1000000"));
                canceled.cancel();
            }
            for (int i = 0; i < futures.size(); ++i) {
                try {
                    const QVariant r = QIsle::waitFor(futures[i]);
                    if (i % 3 == 1 && r != QVariant(qlonglong(i / 3 + t)))
                        ++errors;
                } catch (const QIsleError &) {
                    ++errors;
                }
            }
            (void)isle->isAlive();
        });
        threads.last()->start();
    }
    for (QThread *thread : threads) {
        QVERIFY(thread->wait(60000));
        delete thread;
    }
    QCOMPARE(errors.load(), 0);
    const qlonglong total = isle->eval(QStringLiteral("return total")).toLongLong();
    // Canceled requests may still have run if the cancel came late: only
    // whole increments are possible.
    QCOMPARE(total % 1000000, qlonglong(Threads * 200));
}

void tst_Threads::blockingCallFromLuaThreadRunsInline()
{
    auto isle = QIsle::spawn();
    QIsle *raw = isle.get();
    isle->registerFunction(QStringLiteral("nested"), [raw](const QVariantList &args) {
        // A blocking call made on the Lua thread: must not deadlock.
        return raw->eval(QStringLiteral("return %1 + 1").arg(args.value(0).toInt()));
    });
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("return nested(41)"));
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QCOMPARE(f.result(), QVariant(qlonglong(42)));

    // From an exec closure too, and from inside a coroutine.
    const QVariant r = isle->exec([raw](lua_State *) { return raw->call(QStringLiteral("nested"), {1}); });
    QCOMPARE(r, QVariant(qlonglong(2)));
    QCOMPARE(isle->eval(QStringLiteral(
                     "local co = coroutine.wrap(function() return nested(9) end) return co()")),
             QVariant(qlonglong(10)));
}

void tst_Threads::nestedCallSeesErrors()
{
    auto isle = QIsle::spawn();
    QIsle *raw = isle.get();
    isle->registerFunction(QStringLiteral("nestedBad"), [raw](const QVariantList &) {
        return raw->eval(QStringLiteral("error('inner failure')"));
    });
    const QVariant r = isle->eval(QStringLiteral(
            "local ok, err = pcall(nestedBad) return tostring(ok) .. ':' .. err"));
    QVERIFY2(r.toString().startsWith(QStringLiteral("false:")), qPrintable(r.toString()));
    QVERIFY2(r.toString().contains(QStringLiteral("inner failure")), qPrintable(r.toString()));
}

void tst_Threads::spawnFromLuaThreadIsQueued()
{
    auto isle = QIsle::spawn();
    QIsle *raw = isle.get();
    QFuture<QVariant> later;
    isle->exec([&](lua_State *) {
        later = raw->spawnEval(QStringLiteral("return 'later'"));
        return QVariant();
    });
    QCOMPARE(QIsle::waitFor(later), QVariant(QStringLiteral("later")));
}

void tst_Threads::lowLatencySpin()
{
    // The spinning hand-off gives the same answers, from many threads, and
    // still sleeps when idle (a request after a pause is served).
    QIsleOptions options;
    options.lowLatencySpin = std::chrono::microseconds(200);
    auto isle = QIsle::spawn({}, options);
    isle->eval(QStringLiteral("function add(a, b) return a + b end"));
    std::atomic<int> wrong{0};
    // std::thread: its join is visible to ThreadSanitizer (Qt's QThread::wait
    // is not instrumented in Debian's Qt).
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 300; ++i) {
                if (isle->call(QStringLiteral("add"), {t, i}) != QVariant(qlonglong(t + i)))
                    ++wrong;
            }
        });
    }
    for (std::thread &thread : threads)
        thread.join();
    QCOMPARE(wrong.load(), 0);
    QThread::msleep(20);
    QCOMPARE(isle->call(QStringLiteral("add"), {40, 2}), QVariant(qlonglong(42)));
}

QTEST_GUILESS_MAIN(tst_Threads)
#include "tst_threads.moc"
