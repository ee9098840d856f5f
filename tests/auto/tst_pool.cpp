// QIslePool and QIsleLease: every clause of DESIGN.md's "QIslePool" section.
#include <QIsle/QIsle>
#include <QIsle/QIsleLua>
#include <QIsle/QIslePool>

#include <QtTest/QtTest>

#include <QtCore/QPromise>

#include <atomic>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

qulonglong currentThreadId()
{
    return qulonglong(quintptr(QThread::currentThread()));
}

// An exec closure that answers with its Lua thread: which isle ran it.
QVariant whereAmI(lua_State *)
{
    return QVariant(currentThreadId());
}

qulonglong threadOf(QIsle &isle)
{
    return isle.exec(whereAmI).toULongLong();
}

QIslePoolOptions sized(int size, bool warm = true)
{
    QIslePoolOptions options;
    options.size = size;
    options.warm = warm;
    return options;
}

template <typename F>
QIsleError::Kind kindOf(F &&f)
{
    try {
        f();
    } catch (const QIsleError &e) {
        return e.kind();
    }
    return QIsleError::Kind(-1);
}

QIsleError::Kind failureOf(QFuture<QVariant> future)
{
    return kindOf([&] { QIsle::waitFor(future); });
}

// Lua waits on gate() (isle.sleep between looks) until the test opens it.
// started() counts the requests that got that far.
struct Gate
{
    std::atomic<bool> open{false};
    std::atomic<int> started{0};

    void install(QIslePool &pool)
    {
        pool.registerFunction(QStringLiteral("gate"), [this](const QVariantList &) { return QVariant(open.load()); });
        pool.registerFunction(QStringLiteral("started"), [this](const QVariantList &) {
            ++started;
            return QVariant();
        });
    }
    static QString script(const QString &then = QStringLiteral("return 1"))
    {
        return QStringLiteral("started() while not gate() do isle.sleep(1) end ") + then;
    }
};

// The Lua thread of each slot, by index: checkout() takes the lowest free
// spawned isle, so leasing all of an idle warm pool walks the indices.
QList<qulonglong> threadsByIndex(QIslePool &pool)
{
    std::vector<QIsleLease> leases;
    QList<qulonglong> threads;
    for (int i = 0; i < pool.size(); ++i) {
        leases.push_back(pool.tryCheckout());
        if (!leases.back())
            return {};
        threads << threadOf(*leases.back().isle());
    }
    return threads;
}

} // namespace

class tst_Pool : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    // spawn and sizes
    void warmSpawnsEveryIsle();
    void sizeZeroIsIdealThreadCount();
    void warmInitFailureThrows();
    void coldSpawnsWhenNeeded();
    // dispatch
    void idleTiesGoToLowestIndex();
    void fewestRequestsWins();
    void spawnedBeforeColdOnTies();
    void leasedIslesGetNone();
    void loadDropsBeforeFutureFinishes();
    void oneIsleToChooseTakesAPipeline();
    void loadCountsEveryWayARequestEnds();
    // requests waiting in the pool
    void waitingRequestsArePendingAndFifo();
    void cancelWaitingFinishesAtOnce();
    void waitingServedBeforeBlockedCheckout();
    void blockingCallWaitsForAnIsle();
    void relayedResultsProgressAndErrors();
    void relayedEmitsArriveWhileRunning();
    void relayedCancelStopsTheIsle();
    void timeoutCountsFromStartOnIsle();
    // counts
    void countsAfterEveryStep();
    // cold isles
    void coldInitFailureFailsTheRequest();
    void coldInitFailureInCheckout_data();
    void coldInitFailureInCheckout();
    // leases
    void defaultLeaseIsEmpty();
    void moveAssignReleasesOldLease();
    void leaseMovedBetweenThreads();
    void blockedCheckoutWokenByRelease();
    void checkoutTimeoutAndTry();
    void busyIsleIsNotFree();
    void discardWhileRequestsRun();
    void discardReplacementInitFailure();
    void leaseOutlivesPool();
    // registrations, signals, inline calls
    void registrationsReachEveryIsle();
    void registrationOrderOnLaterIsles();
    void printedForwarded();
    void inlineBlockingCallFromLuaThread();
    // registrations of every kind, handler failures
    void asyncFunctionsReachEveryIsle();
    void everyKindReplayedInOrder();
    void contextFunctionsRunInContextThread();
    void contextDestroyedBeforeLaterIsles();
    void exposeObjectOnEveryIsle();
    void registrationOnItsLuaThreadIsInline();
    void handlerFailedFromEveryIsle();
    // checkout runs the calls posted to its thread
    void checkoutRunsCallsPostedToItsThread();
    void blockedCheckoutAnswersLeaseHolder();
    // lifecycle
    void shutdownDrainsAndRefuses();
    void destructionIsPrompt();
    void destructionWakesBlockedCheckout();
    void destroyedByAPrintedSlot();
};

void tst_Pool::warmSpawnsEveryIsle()
{
    std::atomic<int> inits{0};
    auto pool = QIslePool::spawn([&](lua_State *L) {
        ++inits;
        luaL_dostring(L, "fromInit = 'yes'");
    }, sized(3));
    QCOMPARE(inits.load(), 3);
    QCOMPARE(pool->size(), 3);
    QCOMPARE(pool->idleCount(), 3);
    QCOMPARE(pool->leasedCount(), 0);
    QVERIFY(pool->isAlive());
    // init ran on every isle: each lease sees its global.
    std::vector<QIsleLease> leases;
    QSet<qulonglong> threads;
    for (int i = 0; i < 3; ++i) {
        leases.push_back(pool->checkout());
        QVERIFY(leases.back());
        QCOMPARE(leases.back()->eval(QStringLiteral("return fromInit")), QVariant(QStringLiteral("yes")));
        threads << threadOf(*leases.back().isle());
    }
    QCOMPARE(threads.size(), 3);
    QCOMPARE(pool->leasedCount(), 3);
    QCOMPARE(pool->idleCount(), 0);
}

void tst_Pool::sizeZeroIsIdealThreadCount()
{
    auto pool = QIslePool::spawn({}, sized(0, false));
    QCOMPARE(pool->size(), std::max(1, QThread::idealThreadCount()));
    auto negative = QIslePool::spawn({}, sized(-3, false));
    QCOMPARE(negative->size(), std::max(1, QThread::idealThreadCount()));
    QCOMPARE(QIslePoolOptions().size, 0);
    QCOMPARE(QIslePoolOptions().warm, true);
}

void tst_Pool::warmInitFailureThrows()
{
    std::atomic<int> inits{0};
    try {
        auto pool = QIslePool::spawn([&](lua_State *L) {
            if (++inits == 2)
                luaL_error(L, "second init fails");
        }, sized(3));
        QFAIL("expected Init");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Init);
        QVERIFY2(e.message().contains(QStringLiteral("second init fails")), qPrintable(e.message()));
    }
    QCOMPARE(inits.load(), 3);
}

void tst_Pool::coldSpawnsWhenNeeded()
{
    std::atomic<int> inits{0};
    auto pool = QIslePool::spawn([&](lua_State *) { ++inits; }, sized(3, false));
    QCOMPARE(inits.load(), 0);
    QCOMPARE(pool->idleCount(), 3); // cold slots are idle
    QCOMPARE(pool->eval(QStringLiteral("return 1 + 1")), QVariant(2LL));
    QCOMPARE(inits.load(), 1);
    QFuture<QVariant> f = pool->spawnEval(QStringLiteral("return 'a'"));
    QCOMPARE(QIsle::waitFor(f), QVariant(QStringLiteral("a")));
    QCOMPARE(inits.load(), 1); // the spawned isle wins the tie
    QIsleLease lease = pool->checkout();
    QVERIFY(lease);
    QCOMPARE(inits.load(), 1); // the spawned one is free: no spawn
    QIsleLease second = pool->checkout();
    QVERIFY(second);
    QCOMPARE(inits.load(), 2); // a cold slot, spawned by checkout
    QCOMPARE(pool->leasedCount(), 2);
    QCOMPARE(pool->idleCount(), 1);
}

void tst_Pool::idleTiesGoToLowestIndex()
{
    auto pool = QIslePool::spawn({}, sized(3));
    const QList<qulonglong> threads = threadsByIndex(*pool);
    QCOMPARE(threads.size(), 3);
    QCOMPARE(pool->leasedCount(), 0);
    for (int i = 0; i < 10; ++i) {
        QCOMPARE(pool->exec(whereAmI).toULongLong(), threads[0]);
        QCOMPARE(QIsle::waitFor(pool->spawnExec(whereAmI)).toULongLong(), threads[0]);
    }
}

void tst_Pool::fewestRequestsWins()
{
    auto pool = QIslePool::spawn({}, sized(3));
    Gate gate;
    gate.install(*pool);
    const QList<qulonglong> threads = threadsByIndex(*pool);
    QCOMPARE(threads.size(), 3);
    const QString held = Gate::script(QStringLiteral("return 0"));
    // Index 0 takes the first; then 1 (load 0 beats load 1), then 2.
    QList<QFuture<QVariant>> running;
    for (int i = 0; i < 3; ++i)
        running << pool->spawnEval(held);
    QTRY_COMPARE(gate.started.load(), 3);
    QCOMPARE(pool->idleCount(), 0);
    // Queue a second request on 0 and 1 (ties at load 1: lowest index first),
    // then the next goes to 2, the only one left at load 1.
    QFuture<QVariant> second0 = pool->spawnExec(whereAmI);
    QFuture<QVariant> second1 = pool->spawnExec(whereAmI);
    QFuture<QVariant> second2 = pool->spawnExec(whereAmI);
    gate.open = true;
    QCOMPARE(QIsle::waitFor(second0).toULongLong(), threads[0]);
    QCOMPARE(QIsle::waitFor(second1).toULongLong(), threads[1]);
    QCOMPARE(QIsle::waitFor(second2).toULongLong(), threads[2]);
    for (auto &f : running)
        QCOMPARE(QIsle::waitFor(f), QVariant(0LL));
    QCOMPARE(pool->idleCount(), 3);
}

void tst_Pool::spawnedBeforeColdOnTies()
{
    std::atomic<int> inits{0};
    auto pool = QIslePool::spawn([&](lua_State *) { ++inits; }, sized(3, false));
    Gate gate;
    gate.install(*pool);
    // Every slot cold and idle: the lowest index is spawned.
    const qulonglong first = pool->exec(whereAmI).toULongLong();
    QCOMPARE(inits.load(), 1);
    // Spawned and idle beats cold and idle.
    for (int i = 0; i < 5; ++i)
        QCOMPARE(QIsle::waitFor(pool->spawnExec(whereAmI)).toULongLong(), first);
    QCOMPARE(inits.load(), 1);
    // Busy spawned (load 1) loses to a cold slot (load 0).
    QFuture<QVariant> busy = pool->spawnEval(Gate::script());
    QTRY_COMPARE(gate.started.load(), 1);
    const qulonglong second = QIsle::waitFor(pool->spawnExec(whereAmI)).toULongLong();
    QVERIFY(second != first);
    QCOMPARE(inits.load(), 2);
    gate.open = true;
    QCOMPARE(QIsle::waitFor(busy), QVariant(1LL));
}

void tst_Pool::leasedIslesGetNone()
{
    auto pool = QIslePool::spawn({}, sized(2));
    QIsleLease lease = pool->checkout();
    QVERIFY(lease);
    const qulonglong leased = threadOf(*lease.isle());
    QList<QFuture<QVariant>> futures;
    for (int i = 0; i < 50; ++i)
        futures << pool->spawnExec(whereAmI);
    for (int i = 0; i < 20; ++i)
        QVERIFY(pool->exec(whereAmI).toULongLong() != leased);
    for (auto &f : futures)
        QVERIFY(QIsle::waitFor(f).toULongLong() != leased);
    // The lease still serves its holder meanwhile.
    QCOMPARE(threadOf(*lease.isle()), leased);
}

void tst_Pool::loadDropsBeforeFutureFinishes()
{
    auto pool = QIslePool::spawn({}, sized(2));
    for (int i = 0; i < 300; ++i) {
        QFuture<QVariant> f = pool->spawnEval(QStringLiteral("return %1").arg(i));
        f.waitForFinished();
        // No grace period: the isle is idle the moment its future finished.
        QCOMPARE(pool->idleCount(), 2);
        QCOMPARE(f.result(), QVariant(qlonglong(i)));
    }
    // The same for held requests (every isle leased, then released).
    for (int i = 0; i < 20; ++i) {
        QIsleLease a = pool->checkout();
        QIsleLease b = pool->checkout();
        QFuture<QVariant> f = pool->spawnEval(QStringLiteral("return %1").arg(i));
        a.release();
        f.waitForFinished();
        QCOMPARE(pool->idleCount(), 1);
        QCOMPARE(f.result(), QVariant(qlonglong(i)));
    }
}

void tst_Pool::oneIsleToChooseTakesAPipeline()
{
    // With one isle to choose from: a pipeline gets every answer, the isle
    // counts as busy while it works, and as idle the moment its last future
    // finished.
    constexpr int Calls = 3000;
    auto check = [](QIslePool &pool, int idleWhenDone) {
        pool.exec([](lua_State *L) {
            luaL_dostring(L, "function twice(x) return 2 * x end");
            return QVariant();
        });
        QList<QFuture<QVariant>> futures;
        for (int i = 0; i < Calls; ++i)
            futures << pool.spawnCall(QStringLiteral("twice"), {i});
        // Busy while its last request is unfinished (looked at after the
        // count: then it was unfinished during it too).
        const int idleMeanwhile = pool.idleCount();
        if (!futures.last().isFinished())
            QCOMPARE(idleMeanwhile, idleWhenDone - 1);
        for (int i = 0; i < Calls; ++i)
            QCOMPARE(QIsle::waitFor(futures[i]), QVariant(qlonglong(2 * i)));
        QCOMPARE(pool.idleCount(), idleWhenDone);
    };
    auto one = QIslePool::spawn({}, sized(1));
    check(*one, 1);
    check(*one, 1);
    // A pool of two with one isle leased: the other takes them all.
    auto two = QIslePool::spawn({}, sized(2));
    QIsleLease lease = two->checkout();
    QVERIFY(lease);
    lease->exec([](lua_State *L) {
        luaL_dostring(L, "function twice(x) return 'leased' end");
        return QVariant();
    });
    check(*two, 1);
    lease.release();
    QCOMPARE(two->idleCount(), 2);
}

void tst_Pool::loadCountsEveryWayARequestEnds()
{
    // However a request ends -- refused, canceled before it ran, failed, or
    // finished out of order -- it stops counting towards its isle's load,
    // or the pool would think the isle busy forever.
    QIslePoolOptions options = sized(1);
    options.isle.maxPending = 4;
    options.isle.maxConcurrentRequests = 0; // requests finish in any order
    auto pool = QIslePool::spawn({}, options);
    std::atomic<bool> entered{false};
    std::atomic<bool> release{false};
    pool->registerFunction(QStringLiteral("held"), [&](const QVariantList &) {
        entered = true;
        for (int i = 0; i < 10000 && !release.load(); ++i) // bounded: 10 s
            QThread::msleep(1);
        return QVariant(1);
    });
    QFuture<QVariant> running = pool->spawnEval(QStringLiteral("return held()"));
    QTRY_VERIFY(entered.load()); // the Lua thread is inside it: nothing else is taken
    QCOMPARE(pool->idleCount(), 0);
    // Queued behind it, then refused: the queue holds maxPending.
    QList<QFuture<QVariant>> queued;
    for (int i = 0; i < 4; ++i)
        queued.append(pool->spawnEval(QStringLiteral("return %1").arg(i)));
    QFuture<QVariant> refused = pool->spawnEval(QStringLiteral("return 'no room'"));
    QCOMPARE(failureOf(refused), QIsleError::Kind::Busy);
    // Canceled while queued, and one that fails.
    queued[0].cancel();
    queued[1].cancel();
    release = true;
    QCOMPARE(QIsle::waitFor(running), QVariant(1));
    QCOMPARE(failureOf(queued[0]), QIsleError::Kind::Cancelled);
    QCOMPARE(failureOf(queued[1]), QIsleError::Kind::Cancelled);
    QCOMPARE(QIsle::waitFor(queued[2]), QVariant(2LL));
    QCOMPARE(QIsle::waitFor(queued[3]), QVariant(3LL));
    QCOMPARE(pool->idleCount(), 1);
    QFuture<QVariant> failed = pool->spawnEval(QStringLiteral("error('boom')"));
    QCOMPARE(failureOf(failed), QIsleError::Kind::Runtime);
    QCOMPARE(pool->idleCount(), 1);
    // Out of order: a sleeper started first ends last.
    QFuture<QVariant> slow = pool->spawnEval(QStringLiteral("isle.sleep(1000) return 'slow'"));
    QFuture<QVariant> fast = pool->spawnEval(QStringLiteral("return 'fast'"));
    QCOMPARE(QIsle::waitFor(fast), QVariant(QStringLiteral("fast")));
    QVERIFY(!slow.isFinished());
    QCOMPARE(pool->idleCount(), 0);
    QCOMPARE(QIsle::waitFor(slow), QVariant(QStringLiteral("slow")));
    QCOMPARE(pool->idleCount(), 1);
}

void tst_Pool::waitingRequestsArePendingAndFifo()
{
    auto pool = QIslePool::spawn({}, sized(2));
    QStringList order;
    QMutex mutex;
    pool->registerFunction(QStringLiteral("record"), [&](const QVariantList &args) {
        QMutexLocker lock(&mutex);
        order << args.value(0).toString();
        return QVariant();
    });
    QIsleLease a = pool->checkout();
    QIsleLease b = pool->checkout();
    QCOMPARE(pool->idleCount(), 0);
    QList<QFuture<QVariant>> futures;
    for (int i = 0; i < 20; ++i)
        futures << pool->spawnEval(QStringLiteral("record('%1') return %1").arg(i));
    QTest::qWait(50);
    for (const auto &f : futures) {
        QVERIFY(!f.isFinished());
        QVERIFY(f.isRunning()); // pending, as any unfinished request
        QVERIFY(!f.isCanceled());
    }
    QVERIFY(order.isEmpty());
    QCOMPARE(pool->idleCount(), 0);
    QCOMPARE(pool->leasedCount(), 2);
    b.release(); // all of them go to b's isle, in order
    for (int i = 0; i < futures.size(); ++i)
        QCOMPARE(QIsle::waitFor(futures[i]), QVariant(qlonglong(i)));
    QStringList expected;
    for (int i = 0; i < 20; ++i)
        expected << QString::number(i);
    QCOMPARE(order, expected);
}

void tst_Pool::cancelWaitingFinishesAtOnce()
{
    auto pool = QIslePool::spawn({}, sized(1));
    std::atomic<int> ran{0};
    pool->registerFunction(QStringLiteral("ran"), [&](const QVariantList &) {
        ++ran;
        return QVariant();
    });
    QIsleLease lease = pool->checkout();
    QFuture<QVariant> canceled = pool->spawnEval(QStringLiteral("ran() return 1"));
    QFuture<QVariant> kept = pool->spawnEval(QStringLiteral("return 2"));
    QVERIFY(!canceled.isFinished());
    QElapsedTimer timer;
    timer.start();
    canceled.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(canceled.isFinished(), 2000);
    QVERIFY2(timer.elapsed() < 500, qPrintable(QString::number(timer.elapsed())));
    QVERIFY(canceled.isCanceled());
    QCOMPARE(failureOf(canceled), QIsleError::Kind::Cancelled);
    QVERIFY(!kept.isFinished()); // the others keep waiting
    lease.release();
    QCOMPARE(QIsle::waitFor(kept), QVariant(2LL));
    QCOMPARE(ran.load(), 0); // it never ran
    QCOMPARE(pool->idleCount(), 1);
}

void tst_Pool::waitingServedBeforeBlockedCheckout()
{
    auto pool = QIslePool::spawn({}, sized(1));
    std::atomic<bool> ran{false};
    pool->registerFunction(QStringLiteral("ran"), [&](const QVariantList &) {
        ran = true;
        return QVariant();
    });
    QIsleLease lease = pool->checkout();
    QFuture<QVariant> waiting = pool->spawnEval(QStringLiteral("isle.sleep(100) ran() return 'first'"));
    std::atomic<bool> gotLease{false};
    std::atomic<bool> ranBeforeCheckout{false};
    std::thread blocked([&] {
        QIsleLease mine = pool->checkout();
        ranBeforeCheckout = ran.load();
        gotLease = bool(mine);
    });
    QTest::qWait(50);
    QVERIFY(!gotLease.load());
    lease.release();
    blocked.join();
    QVERIFY(gotLease.load());
    QVERIFY(ranBeforeCheckout.load());
    QCOMPARE(QIsle::waitFor(waiting), QVariant(QStringLiteral("first")));
}

void tst_Pool::blockingCallWaitsForAnIsle()
{
    auto pool = QIslePool::spawn({}, sized(1));
    QIsleLease lease = pool->checkout();
    std::atomic<bool> done{false};
    QVariant result;
    std::thread caller([&] {
        result = pool->eval(QStringLiteral("return 'after release'"));
        done = true;
    });
    QTest::qWait(50);
    QVERIFY(!done.load());
    lease.release();
    caller.join();
    QCOMPARE(result, QVariant(QStringLiteral("after release")));
    // Errors come through a held request too.
    lease = pool->checkout();
    std::atomic<int> kind{-1};
    std::thread failing([&] {
        kind = int(kindOf([&] { pool->eval(QStringLiteral("error('boom')")); }));
    });
    QTest::qWait(20);
    lease.release();
    failing.join();
    QCOMPARE(QIsleError::Kind(kind.load()), QIsleError::Kind::Runtime);
}

void tst_Pool::relayedResultsProgressAndErrors()
{
    auto pool = QIslePool::spawn({}, sized(1));
    QIsleLease lease = pool->checkout();
    QFuture<QVariant> f = pool->spawnEval(QStringLiteral(
            "isle.progress(1, 4, 'quarter') for i = 1, 3 do isle.emit(i * 10) end "
            "isle.progress(3, 4, 'most') isle.sleep(50) return 'done'"));
    QFutureWatcher<QVariant> watcher;
    QSignalSpy ready(&watcher, &QFutureWatcherBase::resultReadyAt);
    QSignalSpy progress(&watcher, &QFutureWatcherBase::progressValueChanged);
    QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
    watcher.setFuture(f);
    QFuture<QVariant> failing = pool->spawnEval(QStringLiteral("isle.emit('x')\n\nerror('late')"));
    lease.release();
    QVERIFY(finished.wait(5000));
    QCOMPARE(QIsle::waitFor(f), QVariant(QStringLiteral("done")));
    QCOMPARE(f.resultAt(1), QVariant(10LL));
    QCOMPARE(f.resultAt(2), QVariant(20LL));
    QCOMPARE(f.resultAt(3), QVariant(30LL));
    QCOMPARE(f.progressMaximum(), 4);
    QCOMPARE(f.progressValue(), 3);
    QCOMPARE(f.progressText(), QStringLiteral("most"));
    QVERIFY(ready.count() >= 1);
    QVERIFY(progress.count() >= 1);
    try {
        QIsle::waitFor(failing);
        QFAIL("expected Runtime");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QCOMPARE(e.line(), 3);
        QVERIFY(e.message().contains(QStringLiteral("late")));
    }
}

void tst_Pool::relayedEmitsArriveWhileRunning()
{
    // A held request's emits reach its future while the script still runs,
    // in order; one that fails after emitting ends with its error alone.
    auto pool = QIslePool::spawn({}, sized(1));
    QIsleLease lease = pool->checkout();
    QFuture<QVariant> f = pool->spawnEval(QStringLiteral(
            "for i = 1, 3 do isle.emit(i) end isle.sleep(60000)"));
    QFuture<QVariant> failing = pool->spawnEval(QStringLiteral(
            "isle.emit('x') isle.sleep(50) error('late')"));
    QFutureWatcher<QVariant> watcher;
    QList<int> announced;
    connect(&watcher, &QFutureWatcherBase::resultReadyAt, this, [&](int i) { announced.append(i); });
    watcher.setFuture(f);
    lease.release();
    QTRY_COMPARE_WITH_TIMEOUT(announced.size(), 3, 5000);
    QVERIFY(!f.isFinished());
    QCOMPARE(announced, (QList<int>{1, 2, 3}));
    for (int i = 1; i <= 3; ++i)
        QCOMPARE(f.resultAt(i), QVariant(qlonglong(i)));
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(f.resultAt(3), QVariant(3LL)); // values emitted before the cancel stay
    try {
        QIsle::waitFor(failing);
        QFAIL("expected Runtime");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QVERIFY(e.message().contains(QStringLiteral("late")));
    }
    QVERIFY(!failing.isResultReadyAt(1)); // its emit went with the failure, as on the isle
}

void tst_Pool::relayedCancelStopsTheIsle()
{
    auto pool = QIslePool::spawn({}, sized(1));
    Gate gate;
    gate.install(*pool);
    QIsleLease lease = pool->checkout();
    QFuture<QVariant> f = pool->spawnEval(QStringLiteral("started() while true do end"));
    lease.release();
    QTRY_COMPARE(gate.started.load(), 1); // forwarded and running
    QCOMPARE(pool->idleCount(), 0);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(pool->idleCount(), 1);
    QCOMPARE(pool->eval(QStringLiteral("return 'alive'")), QVariant(QStringLiteral("alive")));
}

void tst_Pool::timeoutCountsFromStartOnIsle()
{
    auto pool = QIslePool::spawn({}, sized(1));
    QIsleLease lease = pool->checkout();
    QIsleRequestOptions options;
    options.timeout = 300ms;
    QFuture<QVariant> fits = pool->spawnEval(QStringLiteral("isle.sleep(50) return 'in time'"), options);
    QFuture<QVariant> tooLong = pool->spawnEval(QStringLiteral("isle.sleep(5000) return 'late'"), options);
    QTest::qWait(500); // longer than the timeout, waiting in the pool
    QVERIFY(!fits.isFinished());
    lease.release();
    QCOMPARE(QIsle::waitFor(fits), QVariant(QStringLiteral("in time")));
    QElapsedTimer timer;
    timer.start();
    QCOMPARE(failureOf(tooLong), QIsleError::Kind::Timeout);
    QVERIFY(timer.elapsed() < 3000);
    // Blocking form too.
    lease = pool->checkout();
    std::atomic<int> kind{-1};
    QVariant value;
    std::thread caller([&] {
        value = pool->eval(QStringLiteral("isle.sleep(50) return 7"), options);
        kind = int(kindOf([&] { pool->eval(QStringLiteral("isle.sleep(5000)"), options); }));
    });
    QTest::qWait(400);
    lease.release();
    caller.join();
    QCOMPARE(value, QVariant(7LL));
    QCOMPARE(QIsleError::Kind(kind.load()), QIsleError::Kind::Timeout);
}

void tst_Pool::countsAfterEveryStep()
{
    auto pool = QIslePool::spawn({}, sized(3, false));
    Gate gate;
    gate.install(*pool);
    auto counts = [&] { return std::make_pair(pool->leasedCount(), pool->idleCount()); };
    using P = std::pair<int, int>;
    QCOMPARE(pool->size(), 3);
    QCOMPARE(counts(), P(0, 3));
    QIsleLease a = pool->checkout(); // spawns slot 0
    QCOMPARE(counts(), P(1, 2));
    QFuture<QVariant> busy = pool->spawnEval(Gate::script()); // slot 1, spawned in the background
    QCOMPARE(counts(), P(1, 1));
    QTRY_COMPARE(gate.started.load(), 1);
    QCOMPARE(counts(), P(1, 1));
    QIsleLease b = pool->checkout(); // slot 2 (cold, free)
    QVERIFY(b);
    QCOMPARE(counts(), P(2, 0));
    QVERIFY(!pool->tryCheckout()); // slot 1 is busy
    QCOMPARE(counts(), P(2, 0));
    gate.open = true;
    QCOMPARE(QIsle::waitFor(busy), QVariant(1LL));
    QCOMPARE(counts(), P(2, 1));
    QIsleLease c = pool->tryCheckout();
    QVERIFY(c);
    QCOMPARE(counts(), P(3, 0));
    QFuture<QVariant> waiting = pool->spawnEval(QStringLiteral("return 'w'"));
    QCOMPARE(counts(), P(3, 0)); // waiting in the pool: no isle's load
    a.release();
    QCOMPARE(pool->leasedCount(), 2);
    QCOMPARE(QIsle::waitFor(waiting), QVariant(QStringLiteral("w")));
    QCOMPARE(counts(), P(2, 1));
    b.discard();
    QCOMPARE(pool->leasedCount(), 1);
    QCOMPARE(pool->idleCount(), 2); // the slot being spawned again is idle
    c = QIsleLease();
    QCOMPARE(counts(), P(0, 3));
    QCOMPARE(pool->size(), 3);
    pool->shutdown();
    QCOMPARE(pool->size(), 3);
    QCOMPARE(pool->leasedCount(), 0);
}

void tst_Pool::coldInitFailureFailsTheRequest()
{
    std::atomic<int> inits{0};
    std::atomic<bool> failInit{true};
    auto pool = QIslePool::spawn([&](lua_State *L) {
        ++inits;
        if (failInit)
            luaL_error(L, "no database");
    }, sized(2, false));
    QFuture<QVariant> f = pool->spawnEval(QStringLiteral("return 1"));
    try {
        QIsle::waitFor(f);
        QFAIL("expected Init");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Init);
        QVERIFY(e.message().contains(QStringLiteral("no database")));
    }
    QCOMPARE(pool->idleCount(), 2); // the slot stays empty
    QCOMPARE(kindOf([&] { pool->eval(QStringLiteral("return 1")); }), QIsleError::Kind::Init);
    QCOMPARE(inits.load(), 2); // tried again at the next need
    failInit = false;
    QCOMPARE(pool->eval(QStringLiteral("return 3")), QVariant(3LL));
    QCOMPARE(inits.load(), 3);
    QCOMPARE(pool->idleCount(), 2);
}

void tst_Pool::coldInitFailureInCheckout_data()
{
    QTest::addColumn<int>("form");
    QTest::addRow("checkout()") << 0;
    QTest::addRow("checkout(timeout)") << 1;
    QTest::addRow("tryCheckout()") << 2;
    QTest::addRow("checkout(0)") << 3;
}

void tst_Pool::coldInitFailureInCheckout()
{
    QFETCH(int, form);
    std::atomic<bool> failInit{true};
    auto pool = QIslePool::spawn([&](lua_State *L) {
        if (failInit)
            luaL_error(L, "bad init");
    }, sized(2, false));
    auto checkout = [&] {
        switch (form) {
        case 0: return pool->checkout();
        case 1: return pool->checkout(200ms);
        case 2: return pool->tryCheckout();
        default: return pool->checkout(0ms);
        }
    };
    try {
        QIsleLease lease = checkout();
        QFAIL("expected Init");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Init);
        QVERIFY(e.message().contains(QStringLiteral("bad init")));
    }
    QCOMPARE(pool->leasedCount(), 0);
    QCOMPARE(pool->idleCount(), 2);
    failInit = false;
    QIsleLease lease = checkout();
    QVERIFY(lease);
    QCOMPARE(lease->eval(QStringLiteral("return 5")), QVariant(5LL));
    QCOMPARE(pool->leasedCount(), 1);
}

void tst_Pool::defaultLeaseIsEmpty()
{
    QIsleLease lease;
    QVERIFY(!lease);
    QVERIFY(lease.isle() == nullptr);
    QVERIFY(lease.operator->() == nullptr);
    lease.release();
    lease.discard();
    QVERIFY(!lease);
    QIsleLease moved(std::move(lease));
    QVERIFY(!moved);
    static_assert(!std::is_copy_constructible_v<QIsleLease>);
    static_assert(!std::is_copy_assignable_v<QIsleLease>);
    static_assert(std::is_nothrow_move_constructible_v<QIsleLease>);
}

void tst_Pool::moveAssignReleasesOldLease()
{
    auto pool = QIslePool::spawn({}, sized(2));
    QIsleLease a = pool->checkout();
    QIsleLease b = pool->checkout();
    QCOMPARE(pool->leasedCount(), 2);
    QIsle *bIsle = b.isle();
    a = std::move(b);
    QCOMPARE(pool->leasedCount(), 1);
    QCOMPARE(pool->idleCount(), 1);
    QVERIFY(!b); // NOLINT(bugprone-use-after-move): moved-from is empty
    QCOMPARE(a.isle(), bIsle);
    QIsleLease c(std::move(a));
    QVERIFY(!a); // NOLINT(bugprone-use-after-move)
    QCOMPARE(c.isle(), bIsle);
    QCOMPARE(pool->leasedCount(), 1);
    c = QIsleLease();
    QCOMPARE(pool->leasedCount(), 0);
    QCOMPARE(pool->idleCount(), 2);
}

void tst_Pool::leaseMovedBetweenThreads()
{
    auto pool = QIslePool::spawn({}, sized(2));
    QIsleLease lease = pool->checkout();
    lease->eval(QStringLiteral("session = 41"));
    // Used and released in another thread.
    QVariant seen;
    std::thread worker([l = std::move(lease), &seen]() mutable {
        seen = l->eval(QStringLiteral("session = session + 1 return session"));
        l.release();
    });
    worker.join();
    QCOMPARE(seen, QVariant(42LL));
    QCOMPARE(pool->leasedCount(), 0);
    // Checked out in another thread, handed back here.
    QIsleLease back;
    std::thread taker([&] { back = pool->checkout(); });
    taker.join();
    QVERIFY(back);
    QCOMPARE(pool->leasedCount(), 1);
    QVERIFY(back->eval(QStringLiteral("return 1")).isValid());
    back = QIsleLease();
    QCOMPARE(pool->leasedCount(), 0);
    // Many threads passing leases around.
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 25; ++i) {
                QIsleLease l = pool->checkout(5s);
                if (!l) {
                    ++errors;
                    continue;
                }
                std::thread other([m = std::move(l), &errors]() mutable {
                    if (m->eval(QStringLiteral("return 2")) != QVariant(2LL))
                        ++errors;
                }); // m released when the lambda goes, in `other`
                other.join();
            }
        });
    }
    for (auto &t : threads)
        t.join();
    QCOMPARE(errors.load(), 0);
    QCOMPARE(pool->leasedCount(), 0);
    QCOMPARE(pool->idleCount(), 2);
}

void tst_Pool::blockedCheckoutWokenByRelease()
{
    auto pool = QIslePool::spawn({}, sized(1));
    QIsleLease lease = pool->checkout();
    std::atomic<bool> returned{false};
    std::atomic<bool> gotIsle{false};
    QElapsedTimer sinceRelease;
    std::atomic<qint64> wokenAfterMs{-1};
    std::thread blocked([&] {
        QIsleLease mine = pool->checkout();
        wokenAfterMs = sinceRelease.elapsed();
        gotIsle = bool(mine);
        returned = true;
    });
    QTest::qWait(100);
    QVERIFY(!returned.load());
    sinceRelease.start();
    lease.release();
    QTRY_VERIFY_WITH_TIMEOUT(returned.load(), 2000);
    blocked.join();
    QVERIFY(gotIsle.load());
    QVERIFY2(wokenAfterMs.load() < 500, qPrintable(QString::number(wokenAfterMs.load())));
    QCOMPARE(pool->leasedCount(), 0); // released when the thread's lease went
}

void tst_Pool::checkoutTimeoutAndTry()
{
    auto pool = QIslePool::spawn({}, sized(1));
    QIsleLease lease = pool->checkout();
    QElapsedTimer timer;
    timer.start();
    QVERIFY(!pool->tryCheckout());
    QVERIFY(!pool->checkout(0ms));
    QVERIFY(!pool->checkout(-5ms));
    QVERIFY(timer.elapsed() < 100);
    timer.restart();
    QIsleLease none = pool->checkout(150ms);
    QVERIFY(!none);
    QVERIFY(timer.elapsed() >= 140);
    QVERIFY(timer.elapsed() < 2000);
    // A release within the timeout is taken.
    std::thread releaser([&] {
        std::this_thread::sleep_for(50ms);
        lease.release();
    });
    QIsleLease got = pool->checkout(5s);
    releaser.join();
    QVERIFY(got);
}

void tst_Pool::busyIsleIsNotFree()
{
    auto pool = QIslePool::spawn({}, sized(1));
    Gate gate;
    gate.install(*pool);
    QFuture<QVariant> busy = pool->spawnEval(Gate::script());
    QTRY_COMPARE(gate.started.load(), 1);
    QVERIFY(!pool->tryCheckout());
    QVERIFY(!pool->checkout(50ms));
    std::atomic<bool> busyDoneAtCheckout{false};
    std::thread blocked([&] {
        QIsleLease l = pool->checkout();
        busyDoneAtCheckout = busy.isFinished() && bool(l);
    });
    QTest::qWait(50);
    gate.open = true;
    blocked.join();
    QVERIFY(busyDoneAtCheckout.load());
}

void tst_Pool::discardWhileRequestsRun()
{
    std::atomic<int> inits{0};
    auto pool = QIslePool::spawn([&](lua_State *L) {
        ++inits;
        luaL_dostring(L, "fresh = true");
    }, sized(2));
    Gate gate;
    gate.install(*pool);
    QIsleLease lease = pool->checkout();
    const qulonglong old = threadOf(*lease.isle());
    lease->eval(QStringLiteral("fresh = false"));
    QFuture<QVariant> running = lease->spawnEval(QStringLiteral("started() while true do end"));
    QFuture<QVariant> queued = lease->spawnEval(QStringLiteral("return 1"));
    QTRY_COMPARE(gate.started.load(), 1);
    QElapsedTimer timer;
    timer.start();
    lease.discard();
    QVERIFY2(timer.elapsed() < 1000, qPrintable(QString::number(timer.elapsed())));
    QVERIFY(!lease);
    QVERIFY(running.isFinished());
    QVERIFY(running.isCanceled());
    QVERIFY(queued.isFinished());
    QCOMPARE(pool->leasedCount(), 0);
    QTRY_COMPARE(inits.load(), 3); // the replacement, spawned in the background
    // The replacement is fresh and has the registrations.
    std::vector<QIsleLease> all;
    for (int i = 0; i < 2; ++i) {
        all.push_back(pool->checkout());
        QVERIFY(all.back());
        QCOMPARE(all.back()->eval(QStringLiteral("return fresh")), QVariant(true));
        QCOMPARE(all.back()->eval(QStringLiteral("return gate()")), QVariant(false));
        QVERIFY(threadOf(*all.back().isle()) != old);
    }
}

void tst_Pool::discardReplacementInitFailure()
{
    std::atomic<bool> failInit{false};
    std::atomic<int> inits{0};
    auto pool = QIslePool::spawn([&](lua_State *L) {
        ++inits;
        if (failInit)
            luaL_error(L, "replacement fails");
    }, sized(1));
    QIsleLease lease = pool->checkout();
    failInit = true;
    lease.discard();
    QTRY_COMPARE(inits.load(), 2);
    // The slot is left empty; the next need tries again.
    QTRY_COMPARE(pool->idleCount(), 1);
    QCOMPARE(failureOf(pool->spawnEval(QStringLiteral("return 1"))), QIsleError::Kind::Init);
    QCOMPARE(kindOf([&] { QIsleLease l = pool->tryCheckout(); }), QIsleError::Kind::Init);
    failInit = false;
    QCOMPARE(pool->eval(QStringLiteral("return 9")), QVariant(9LL));
    QCOMPARE(pool->idleCount(), 1);
    // Requests waiting in the pool when the discard happens go to the replacement.
    lease = pool->checkout();
    QFuture<QVariant> waiting = pool->spawnEval(QStringLiteral("return 'to the new one'"));
    lease.discard();
    QCOMPARE(QIsle::waitFor(waiting), QVariant(QStringLiteral("to the new one")));
}

void tst_Pool::leaseOutlivesPool()
{
    auto pool = QIslePool::spawn({}, sized(2));
    QIsleLease kept = pool->checkout();
    QIsleLease discarded = pool->checkout();
    QIsle *isle = kept.isle();
    kept->eval(QStringLiteral("x = 1"));
    pool.reset();
    QVERIFY(kept);
    QCOMPARE(kept.isle(), isle);
    QVERIFY(!kept->isAlive());
    QCOMPARE(kindOf([&] { kept->eval(QStringLiteral("return x")); }), QIsleError::Kind::Shutdown);
    QCOMPARE(failureOf(kept->spawnEval(QStringLiteral("return x"))), QIsleError::Kind::Shutdown);
    discarded.discard(); // nothing more
    QVERIFY(!discarded);
    // Moved to another thread and released there.
    std::thread t([l = std::move(kept)]() mutable { l.release(); });
    t.join();
}

void tst_Pool::registrationsReachEveryIsle()
{
    auto pool = QIslePool::spawn({}, sized(3, false));
    pool->registerFunction(QStringLiteral("twice"), [](const QVariantList &args) {
        return QVariant(args.value(0).toLongLong() * 2);
    });
    QIsleLease first = pool->checkout(); // spawned after the registration
    QCOMPARE(first->call(QStringLiteral("twice"), {4}), QVariant(8LL));
    // Made while an isle is leased: reaches it too, and later isles.
    pool->registerFunction(QStringLiteral("app.thrice"), [](const QVariantList &args) {
        return QVariant(args.value(0).toLongLong() * 3);
    });
    QCOMPARE(first->call(QStringLiteral("app.thrice"), {4}), QVariant(12LL));
    QIsleLease second = pool->checkout();
    QIsleLease third = pool->checkout();
    for (QIsleLease *l : {&second, &third}) {
        QCOMPARE((*l)->call(QStringLiteral("twice"), {5}), QVariant(10LL));
        QCOMPARE((*l)->call(QStringLiteral("app.thrice"), {5}), QVariant(15LL));
    }
    // Through the pool's own calls.
    first.release();
    QCOMPARE(pool->call(QStringLiteral("app.thrice"), {2}), QVariant(6LL));
}

void tst_Pool::registrationOrderOnLaterIsles()
{
    // init first, then the registrations in the order they were made.
    auto pool = QIslePool::spawn([](lua_State *L) {
        luaL_dostring(L, "function who() return 'init' end function keep() return 'init' end");
    }, sized(2, false));
    pool->registerFunction(QStringLiteral("who"), [](const QVariantList &) { return QVariant(QStringLiteral("first")); });
    pool->registerFunction(QStringLiteral("who"), [](const QVariantList &) { return QVariant(QStringLiteral("second")); });
    QIsleLease a = pool->checkout();
    QIsleLease b = pool->checkout();
    for (QIsleLease *l : {&a, &b}) {
        QCOMPARE((*l)->call(QStringLiteral("who")), QVariant(QStringLiteral("second")));
        QCOMPARE((*l)->call(QStringLiteral("keep")), QVariant(QStringLiteral("init")));
    }
}

void tst_Pool::printedForwarded()
{
    auto pool = QIslePool::spawn({}, sized(2, false));
    QSignalSpy spy(pool.get(), &QIslePool::printed);
    std::atomic<qulonglong> deliveredIn{0};
    connect(pool.get(), &QIslePool::printed, this, [&] { deliveredIn = currentThreadId(); });
    // From a request on a cold isle spawned in another thread.
    std::thread([&] { pool->eval(QStringLiteral("print('from', 'pool')")); }).join();
    QVERIFY(spy.wait(5000));
    QCOMPARE(spy.takeFirst().at(0).toString(), QStringLiteral("from\tpool"));
    QCOMPARE(deliveredIn.load(), currentThreadId());
    // From a leased isle.
    QIsleLease lease = pool->checkout();
    lease->eval(QStringLiteral("print('lease')"));
    QTRY_COMPARE(spy.count(), 1);
    QCOMPARE(spy.takeFirst().at(0).toString(), QStringLiteral("lease"));
    // Each isle's prints, all of them. One print at a time, delivered before
    // the next: a burst of queued printed signals into one thread is a
    // hand-off inside Qt that ThreadSanitizer cannot see (as for any QIsle
    // whose printed is delivered in a thread that does not otherwise wait
    // for its requests).
    lease.release();
    QIsleLease a = pool->checkout();
    QIsleLease b = pool->checkout();
    for (int i = 1; i <= 3; ++i) {
        a->eval(QStringLiteral("print('a%1')").arg(i));
        QTRY_COMPARE(spy.count(), 2 * i - 1);
        b->eval(QStringLiteral("print('b%1')").arg(i));
        QTRY_COMPARE(spy.count(), 2 * i);
    }
    QStringList lines;
    for (const auto &args : spy)
        lines << args.at(0).toString();
    QCOMPARE(lines, QStringList({QStringLiteral("a1"), QStringLiteral("b1"), QStringLiteral("a2"),
                                 QStringLiteral("b2"), QStringLiteral("a3"), QStringLiteral("b3")}));
}

void tst_Pool::inlineBlockingCallFromLuaThread()
{
    auto pool = QIslePool::spawn({}, sized(1)); // one isle: waiting would deadlock
    QIslePool *p = pool.get();
    pool->registerFunction(QStringLiteral("nested"), [p](const QVariantList &args) {
        const qulonglong here = currentThreadId();
        const QVariant inner = p->eval(QStringLiteral("return %1 + 2").arg(args.value(0).toLongLong()));
        const qulonglong ran = p->exec(whereAmI).toULongLong();
        const QVariant called = p->call(QStringLiteral("string.upper"), {QStringLiteral("ok")});
        return QVariant(QVariantList{inner, ran == here, called});
    });
    const QVariantList r = pool->eval(QStringLiteral("return nested(40)")).toList();
    QCOMPARE(r.value(0), QVariant(42LL));
    QCOMPARE(r.value(1), QVariant(true));
    QCOMPARE(r.value(2), QVariant(QStringLiteral("OK")));
    // From a leased isle's Lua thread too: it runs there.
    QIsleLease lease = pool->checkout();
    QCOMPARE(lease->eval(QStringLiteral("return nested(1)")).toList().value(1), QVariant(true));
    // A bigger pool: still the caller's own isle.
    auto big = QIslePool::spawn({}, sized(3));
    QIslePool *b = big.get();
    big->registerFunction(QStringLiteral("same"), [b](const QVariantList &) {
        return QVariant(b->exec(whereAmI).toULongLong() == currentThreadId());
    });
    for (int i = 0; i < 5; ++i)
        QCOMPARE(big->eval(QStringLiteral("return same()")), QVariant(true));
}

// Every isle of the pool at once, a lease each (cold slots are spawned by
// the checkout; a slot being spawned is waited for).
std::vector<QIsleLease> leaseAll(QIslePool &pool)
{
    std::vector<QIsleLease> leases;
    for (int i = 0; i < pool.size(); ++i)
        leases.push_back(pool.checkout(10s));
    return leases;
}

QString pcallMessage(QIsle &isle, const QString &expression)
{
    return isle.eval(QStringLiteral("local ok, e = pcall(function() return %1 end) "
                                    "return tostring(ok) .. ': ' .. tostring(e)").arg(expression)).toString();
}

void tst_Pool::asyncFunctionsReachEveryIsle()
{
    auto pool = QIslePool::spawn({}, sized(3, false));
    // Before any isle exists.
    pool->registerAsyncFunction(QStringLiteral("inc"), [](const QVariantList &args) {
        return QtFuture::makeReadyFuture(QVariant(args.value(0).toLongLong() + 1));
    });
    QIsleLease first = pool->checkout(); // cold: spawned after the registration
    QCOMPARE(first->call(QStringLiteral("inc"), {1}), QVariant(2LL));
    // Made while an isle is leased: reaches it too. A future finished later,
    // in another thread: the script waits for it.
    std::vector<std::thread> finishers;
    std::mutex finishersMutex;
    pool->registerAsyncFunction(QStringLiteral("app.later"), [&](const QVariantList &args) {
        auto promise = std::make_shared<QPromise<QVariant>>();
        promise->start();
        QFuture<QVariant> future = promise->future();
        const std::lock_guard<std::mutex> lock(finishersMutex);
        finishers.emplace_back([promise, v = args.value(0)] {
            std::this_thread::sleep_for(5ms);
            promise->addResult(v);
            promise->finish();
        });
        return future;
    });
    QCOMPARE(first->eval(QStringLiteral("return app.later('leased')")), QVariant(QStringLiteral("leased")));
    // A cold slot spawned in the background by a pool request.
    QCOMPARE(pool->eval(QStringLiteral("return inc(app.later(10))")), QVariant(11LL));
    // Every isle, and the fresh isle a discard puts in its place.
    first.discard();
    std::vector<QIsleLease> leases = leaseAll(*pool);
    QCOMPARE(int(leases.size()), 3);
    for (QIsleLease &lease : leases) {
        QVERIFY(lease);
        QCOMPARE(lease->eval(QStringLiteral("return inc(app.later(41))")), QVariant(42LL));
    }
    leases.clear();
    for (std::thread &t : finishers)
        t.join();
}

void tst_Pool::everyKindReplayedInOrder()
{
    // init first, then the registrations in the order made, whatever their
    // kind: the last one made names the global.
    auto pool = QIslePool::spawn([](lua_State *L) { luaL_dostring(L, "function who() return 'init' end"); },
                                 sized(2, false));
    QIsleLease warm = pool->checkout(); // exists while they are made
    QObject exposed;
    pool->registerFunction(QStringLiteral("who"), [](const QVariantList &) { return QVariant(QStringLiteral("plain")); });
    pool->registerAsyncFunction(QStringLiteral("who"), [](const QVariantList &) {
        return QtFuture::makeReadyFuture(QVariant(QStringLiteral("async")));
    });
    pool->registerFunction(QStringLiteral("who"), this, [](const QVariantList &) { return QVariant(QStringLiteral("context")); });
    pool->registerAsyncFunction(QStringLiteral("what"), this, [](const QVariantList &) {
        return QtFuture::makeReadyFuture(QVariant(QStringLiteral("async context")));
    });
    pool->exposeObject(QStringLiteral("what"), &exposed);
    pool->registerFunction(QStringLiteral("last"), [](const QVariantList &) { return QVariant(QStringLiteral("last")); });
    const auto check = [&](QIsle &isle) {
        QCOMPARE(isle.eval(QStringLiteral("return who()")), QVariant(QStringLiteral("context")));
        QCOMPARE(isle.eval(QStringLiteral("return type(what)")), QVariant(QStringLiteral("userdata")));
        QCOMPARE(isle.eval(QStringLiteral("return last()")), QVariant(QStringLiteral("last")));
    };
    check(*warm.isle());
    QIsleLease cold = pool->checkout(); // spawned after all of them
    QVERIFY(cold);
    check(*cold.isle());
    // The fresh isle of a discard, spawned in the background.
    cold.discard();
    QIsleLease fresh = pool->checkout(10s);
    QVERIFY(fresh);
    check(*fresh.isle());
}

void tst_Pool::contextFunctionsRunInContextThread()
{
    auto pool = QIslePool::spawn({}, sized(2, false));
    const qulonglong self = currentThreadId();
    std::atomic<int> calls{0};
    pool->registerFunction(QStringLiteral("app.where"), this, [&](const QVariantList &args) {
        ++calls;
        return QVariant(currentThreadId() == self && args.value(0) == QVariant(7LL));
    });
    pool->registerAsyncFunction(QStringLiteral("app.later"), this, [&](const QVariantList &) {
        return QtFuture::makeReadyFuture(QVariant(currentThreadId() == self));
    });
    // A cold isle spawned in the background; this thread, blocked in the
    // pool's eval, runs the call.
    QCOMPARE(pool->eval(QStringLiteral("return app.where(7)")), QVariant(true));
    QCOMPARE(pool->eval(QStringLiteral("return app.later()")), QVariant(true));
    // Every isle, and a discarded one's replacement.
    {
        std::vector<QIsleLease> leases = leaseAll(*pool);
        for (QIsleLease &lease : leases) {
            QVERIFY(lease);
            QCOMPARE(lease->eval(QStringLiteral("return app.where(7)")), QVariant(true));
            QCOMPARE(lease->eval(QStringLiteral("return app.later()")), QVariant(true));
        }
        leases.front().discard();
    }
    std::vector<QIsleLease> leases = leaseAll(*pool);
    for (QIsleLease &lease : leases) {
        QVERIFY(lease);
        QCOMPARE(lease->eval(QStringLiteral("return app.where(7)")), QVariant(true));
    }
    // Not blocked: this thread's event loop runs the call.
    QFuture<QVariant> f = leases.back()->spawnEval(QStringLiteral("return app.where(7)"));
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QCOMPARE(QIsle::waitFor(f), QVariant(true));
    QCOMPARE(calls.load(), 1 + 2 + 2 + 1); // app.where: pool, leases, after the discard, not blocked
}

void tst_Pool::contextDestroyedBeforeLaterIsles()
{
    auto pool = QIslePool::spawn({}, sized(2, false));
    auto *context = new QObject;
    auto *shown = new QObject;
    shown->setObjectName(QStringLiteral("shown"));
    pool->registerFunction(QStringLiteral("ctx"), context, [](const QVariantList &) { return QVariant(1); });
    pool->registerAsyncFunction(QStringLiteral("actx"), context, [](const QVariantList &) {
        return QtFuture::makeReadyFuture(QVariant(2));
    });
    pool->exposeObject(QStringLiteral("obj"), shown);
    QIsleLease before = pool->checkout(); // spawned while they live
    QCOMPARE(before->eval(QStringLiteral("return ctx()")), QVariant(1LL));
    QCOMPARE(before->eval(QStringLiteral("return actx()")), QVariant(2LL));
    QCOMPARE(before->eval(QStringLiteral("return obj.objectName")), QVariant(QStringLiteral("shown")));
    delete context;
    delete shown;
    // Spawned after they died: the globals exist; calling or using them
    // raises "destroyed", as on the isle that knew them alive.
    QIsleLease after = pool->checkout();
    QVERIFY(after);
    const auto check = [](QIsle &isle) {
        for (const QString &use : {QStringLiteral("ctx()"), QStringLiteral("actx()"), QStringLiteral("obj.objectName")}) {
            const QString message = pcallMessage(isle, use);
            QVERIFY2(message.startsWith(QStringLiteral("false: ")) && message.contains(QStringLiteral("destroyed")),
                     qPrintable(use + QStringLiteral(" -> ") + message));
        }
        QCOMPARE(isle.eval(QStringLiteral("return type(ctx) .. ' ' .. type(obj)")),
                 QVariant(QStringLiteral("function userdata")));
    };
    check(*before.isle());
    check(*after.isle());
    // And a discarded isle's replacement.
    after.discard();
    QIsleLease fresh = pool->checkout(10s);
    QVERIFY(fresh);
    check(*fresh.isle());
}

void tst_Pool::exposeObjectOnEveryIsle()
{
    auto pool = QIslePool::spawn({}, sized(3, false));
    QIsleLease first = pool->checkout(); // leased when the object is exposed
    QObject shown;
    shown.setObjectName(QStringLiteral("before"));
    pool->exposeObject(QStringLiteral("app.shown"), &shown);
    QCOMPARE(first->eval(QStringLiteral("return app.shown.objectName")), QVariant(QStringLiteral("before")));
    QIsleLease second = pool->checkout(); // spawned later
    QIsleLease third = pool->checkout();
    QVERIFY(second && third);
    // Writes run in the object's thread (this one, blocked in eval).
    third->eval(QStringLiteral("app.shown.objectName = 'third'"));
    QCOMPARE(shown.objectName(), QStringLiteral("third"));
    for (QIsleLease *l : {&first, &second, &third}) {
        QCOMPARE((*l)->eval(QStringLiteral("return app.shown.objectName")), QVariant(QStringLiteral("third")));
        QCOMPARE((*l)->eval(QStringLiteral("return rawequal(app.shown, app.shown)")), QVariant(true));
    }
    first.release();
    QCOMPARE(pool->eval(QStringLiteral("return app.shown.objectName")), QVariant(QStringLiteral("third")));
}

void tst_Pool::registrationOnItsLuaThreadIsInline()
{
    // As on QIsle: registered from a host function, usable at once in the
    // same request on that isle; queued on the others.
    auto pool = QIslePool::spawn({}, sized(2));
    QObject late;
    late.setObjectName(QStringLiteral("late"));
    QIslePool *p = pool.get();
    pool->registerFunction(QStringLiteral("exposeNow"), [p, &late](const QVariantList &) {
        p->exposeObject(QStringLiteral("late"), &late);
        p->registerFunction(QStringLiteral("lateFn"), &late, [](const QVariantList &) { return QVariant(5); });
        return QVariant();
    });
    QCOMPARE(pool->eval(QStringLiteral("exposeNow() return late.objectName .. lateFn()")),
             QVariant(QStringLiteral("late5")));
    std::vector<QIsleLease> leases = leaseAll(*pool);
    for (QIsleLease &lease : leases)
        QCOMPARE(lease->eval(QStringLiteral("return late.objectName .. lateFn()")), QVariant(QStringLiteral("late5")));
}

void tst_Pool::handlerFailedFromEveryIsle()
{
    auto pool = QIslePool::spawn({}, sized(2, false));
    QSignalSpy failed(pool.get(), &QIslePool::handlerFailed);
    std::atomic<qulonglong> deliveredIn{0};
    connect(pool.get(), &QIslePool::handlerFailed, this, [&] { deliveredIn = currentThreadId(); });
    QObject source;
    pool->exposeObject(QStringLiteral("source"), &source);
    {
        std::vector<QIsleLease> leases = leaseAll(*pool);
        for (std::size_t i = 0; i < leases.size(); ++i) {
            leases[i]->eval(QStringLiteral("tagged = true "
                                           "source.objectNameChanged:connect(function(n) error('isle %1 broke on ' .. n) end)")
                                    .arg(i));
        }
    } // released: a handler is a request of its own on its isle, leased or not
    source.setObjectName(QStringLiteral("x"));
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 2, 5000);
    QStringList messages;
    for (const auto &args : std::as_const(failed)) {
        const QVariant reported = args.at(0);
        QCOMPARE(reported.metaType(), QMetaType::fromType<QIsleError>());
        const QIsleError error = *static_cast<const QIsleError *>(reported.constData());
        QCOMPARE(error.kind(), QIsleError::Kind::Runtime);
        messages << error.message();
    }
    messages.sort();
    QVERIFY2(messages.value(0).contains(QStringLiteral("isle 0 broke on x")), qPrintable(messages.join(u'|')));
    QVERIFY2(messages.value(1).contains(QStringLiteral("isle 1 broke on x")), qPrintable(messages.join(u'|')));
    QCOMPARE(deliveredIn.load(), currentThreadId());
    // A discarded isle's replacement reports its own handlers' failures too.
    QIsleLease lease = pool->checkout();
    lease.discard();
    std::vector<QIsleLease> leases = leaseAll(*pool);
    for (QIsleLease &l : leases) { // only the fresh isle lacks the tag
        l->eval(QStringLiteral("if not tagged then tagged = true "
                               "source.objectNameChanged:connect(function(n) error('fresh broke on ' .. n) end) end"));
    }
    leases.clear();
    failed.clear();
    source.setObjectName(QStringLiteral("y"));
    // The discarded isle's handler went with it: the surviving isle's and the new one's.
    QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 2, 5000);
    QTest::qWait(20);
    QCOMPARE(failed.count(), 2);
    messages.clear();
    for (const auto &args : std::as_const(failed))
        messages << static_cast<const QIsleError *>(args.at(0).constData())->message();
    messages.sort();
    QVERIFY2(messages.value(0).contains(QStringLiteral("fresh broke on y")), qPrintable(messages.join(u'|')));
    QVERIFY2(messages.value(1).contains(QStringLiteral("broke on y")), qPrintable(messages.join(u'|')));
}

void tst_Pool::checkoutRunsCallsPostedToItsThread()
{
    auto pool = QIslePool::spawn({}, sized(1));
    std::atomic<int> ran{0};
    std::atomic<qulonglong> ranIn{0};
    pool->registerFunction(QStringLiteral("gui"), this, [&](const QVariantList &) {
        ranIn = currentThreadId();
        ++ran;
        return QVariant(QStringLiteral("answered"));
    });
    // The only isle is busy until this thread answers its script's call.
    QFuture<QVariant> busy = pool->spawnEval(QStringLiteral("isle.sleep(20) return gui()"));
    bool otherEvent = false; // only the posted calls run, no other events
    QMetaObject::invokeMethod(this, [&] { otherEvent = true; }, Qt::QueuedConnection);
    QElapsedTimer timer;
    timer.start();
    QIsleLease lease = pool->checkout(10s); // empty after 10 s if it did not answer
    QVERIFY(lease);
    QVERIFY2(timer.elapsed() < 5000, qPrintable(QString::number(timer.elapsed())));
    QCOMPARE(ran.load(), 1);
    QCOMPARE(ranIn.load(), currentThreadId());
    QVERIFY(busy.isFinished());
    QCOMPARE(QIsle::waitFor(busy), QVariant(QStringLiteral("answered")));
    QVERIFY(!otherEvent);
    QTRY_VERIFY(otherEvent);
    // The untimed checkout() too, behind a request held in the pool.
    lease.release();
    QIsleLease holder = pool->checkout();
    QFuture<QVariant> held = pool->spawnEval(QStringLiteral("return gui()")); // waits in the pool
    std::thread releaser([&] {
        std::this_thread::sleep_for(20ms);
        holder.release(); // the held request goes first, and calls this thread
    });
    QIsleLease again = pool->checkout();
    releaser.join();
    QVERIFY(again);
    QTRY_VERIFY(held.isFinished()); // the relay copies the isle's outcome to it
    QCOMPARE(QIsle::waitFor(held), QVariant(QStringLiteral("answered")));
    QCOMPARE(ran.load(), 2);
}

void tst_Pool::blockedCheckoutAnswersLeaseHolder()
{
    // Every isle leased; the holder's script calls into the thread blocked
    // in checkout(), which must answer it for the isle to come back.
    auto pool = QIslePool::spawn({}, sized(1));
    const qulonglong self = currentThreadId();
    pool->registerFunction(QStringLiteral("gui"), this, [self](const QVariantList &) {
        return QVariant(currentThreadId() == self);
    });
    QIsleLease lease = pool->checkout();
    std::atomic<bool> started{false};
    QVariant holderGot;
    std::thread holder([&, mine = std::move(lease)]() mutable {
        started = true;
        QIsleRequestOptions bounded; // a deadlock ends as Timeout, not as a hung test
        bounded.timeout = 10s;
        try {
            holderGot = mine->eval(QStringLiteral("isle.sleep(20) return gui()"), bounded);
        } catch (const QIsleError &e) {
            holderGot = e.message();
        }
        mine.release();
    });
    while (!started)
        std::this_thread::yield();
    QElapsedTimer timer;
    timer.start();
    QIsleLease mine = pool->checkout();
    holder.join();
    QVERIFY(mine);
    QCOMPARE(holderGot, QVariant(true));
    QVERIFY2(timer.elapsed() < 5000, qPrintable(QString::number(timer.elapsed())));
}

void tst_Pool::shutdownDrainsAndRefuses()
{
    auto pool = QIslePool::spawn({}, sized(2));
    QIsleLease lease = pool->checkout();
    QIsleLease other = pool->checkout();
    QFuture<QVariant> waiting = pool->spawnEval(QStringLiteral("return 1"));
    QFuture<QVariant> onLease = lease->spawnEval(QStringLiteral("isle.sleep(50) return 'drained'"));
    pool->shutdown();
    QVERIFY(!pool->isAlive());
    QCOMPARE(failureOf(waiting), QIsleError::Kind::Shutdown);
    QCOMPARE(QIsle::waitFor(onLease), QVariant(QStringLiteral("drained"))); // queued before: ran
    QVERIFY(!lease->isAlive());
    QCOMPARE(kindOf([&] { lease->eval(QStringLiteral("return 1")); }), QIsleError::Kind::Shutdown);
    QCOMPARE(failureOf(pool->spawnEval(QStringLiteral("return 1"))), QIsleError::Kind::Shutdown);
    QCOMPARE(kindOf([&] { pool->eval(QStringLiteral("return 1")); }), QIsleError::Kind::Shutdown);
    QCOMPARE(kindOf([&] { pool->call(QStringLiteral("print")); }), QIsleError::Kind::Shutdown);
    QCOMPARE(kindOf([&] { pool->exec(whereAmI); }), QIsleError::Kind::Shutdown);
    QVERIFY(!pool->checkout());
    QVERIFY(!pool->checkout(10ms));
    QVERIFY(!pool->tryCheckout());
    pool->shutdown(); // idempotent
    lease.release();
    other.discard();
    pool->registerFunction(QStringLiteral("late"), [](const QVariantList &) { return QVariant(); });
    // Non-leased isles run what was queued on them before shutdown().
    auto second = QIslePool::spawn({}, sized(2));
    QList<QFuture<QVariant>> queued;
    for (int i = 0; i < 20; ++i)
        queued << second->spawnEval(QStringLiteral("isle.sleep(5) return %1").arg(i));
    second->shutdown();
    for (int i = 0; i < queued.size(); ++i) {
        QVERIFY(queued[i].isFinished());
        QCOMPARE(QIsle::waitFor(queued[i]), QVariant(qlonglong(i)));
    }
}

void tst_Pool::destructionIsPrompt()
{
    auto pool = QIslePool::spawn({}, sized(2, false));
    Gate gate;
    gate.install(*pool);
    QList<QFuture<QVariant>> futures;
    for (int i = 0; i < 2; ++i)
        futures << pool->spawnEval(QStringLiteral("started() while true do end"));
    for (int i = 0; i < 10; ++i)
        futures << pool->spawnEval(QStringLiteral("return %1").arg(i));
    QTRY_COMPARE(gate.started.load(), 2);
    // A lease taken and a request held in the pool meanwhile.
    QElapsedTimer timer;
    timer.start();
    pool.reset();
    QVERIFY2(timer.elapsed() < 1000, qPrintable(QString::number(timer.elapsed())));
    for (const auto &f : futures)
        QVERIFY(f.isFinished());
    QVERIFY(futures[0].isCanceled());
    // Held requests too: every isle leased, requests waiting, then destroyed.
    auto held = QIslePool::spawn({}, sized(1));
    QIsleLease lease = held->checkout();
    QFuture<QVariant> waiting = held->spawnEval(QStringLiteral("return 1"));
    timer.restart();
    held.reset();
    QVERIFY(timer.elapsed() < 1000);
    QVERIFY(waiting.isFinished());
    QCOMPARE(failureOf(waiting), QIsleError::Kind::Shutdown);
    QCOMPARE(kindOf([&] { lease->eval(QStringLiteral("return 1")); }), QIsleError::Kind::Shutdown);
}

void tst_Pool::destructionWakesBlockedCheckout()
{
    auto pool = QIslePool::spawn({}, sized(1));
    QIsleLease lease = pool->checkout();
    std::atomic<int> state{0}; // 1 waiting, 2 returned empty, 3 returned a lease
    std::thread blocked([&, p = pool.get()] {
        state = 1;
        QIsleLease mine = p->checkout();
        state = mine ? 3 : 2;
    });
    QTRY_COMPARE(state.load(), 1);
    QTest::qWait(50); // inside checkout(), waiting
    QCOMPARE(state.load(), 1);
    pool.reset();
    blocked.join();
    QCOMPARE(state.load(), 2); // woken by the shutdown: an empty lease
    QCOMPARE(kindOf([&] { lease->eval(QStringLiteral("return 1")); }), QIsleError::Kind::Shutdown);
}

void tst_Pool::destroyedByAPrintedSlot()
{
    // A slot that destroys the pool while a burst of lines is delivered: the
    // rest of the burst is dropped, nothing of the pool is touched.
    auto pool = QIslePool::spawn({}, sized(1, true));
    int received = 0;
    connect(pool.get(), &QIslePool::printed, this, [&](const QString &) {
        ++received;
        pool.reset();
    });
    (void)pool->spawnEval(QStringLiteral("for i = 1, 100 do print(i) end"));
    QTRY_VERIFY_WITH_TIMEOUT(!pool, 10000);
    QCOMPARE(received, 1);
}

QTEST_GUILESS_MAIN(tst_Pool)
#include "tst_pool.moc"
