// Stress: a pool under mixed traffic from several threads -- requests with
// random cancels (queued on an isle, running, or waiting in the pool),
// blocking and nested calls, leases taken, moved between threads, released
// and discarded mid-request, a thread that leases every isle at once so
// requests pile up in the pool, registrations made meanwhile -- then pools
// destroyed with work in flight; and threads blocked in checkout() and the
// pool's calls answering the context functions that the scripts they wait
// for call.
//
// QISLE_STRESS_SCALE (default 1) scales the work; sanitizer runs use less.
// A watchdog turns a hang into a failure with a message.
#include <QIsle/QIsle>
#include <QIsle/QIsleLua>
#include <QIsle/QIslePool>

#include <QtCore/QPromise>
#include <QtCore/QRandomGenerator>
#include <QtTest/QtTest>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr int CallerThreads = 6;
constexpr int Window = 8; // futures a caller keeps in flight
constexpr std::chrono::seconds WatchdogLimit{120};

int scaled(int n)
{
    bool ok = false;
    const double s = qEnvironmentVariable("QISLE_STRESS_SCALE").toDouble(&ok);
    return qMax(1, int(n * (ok && s > 0 ? s : 1.0)));
}

class Watchdog
{
public:
    explicit Watchdog(const char *test) : m_test(test)
    {
        m_thread = std::thread([this] {
            std::unique_lock lock(m_mutex);
            if (!m_done.wait_for(lock, WatchdogLimit, [this] { return m_stop; }))
                qFatal("%s: watchdog: not done after %lld s (phase: %s, %d checked); a future never "
                       "finished, a checkout never returned or an isle stopped serving",
                       m_test, qlonglong(WatchdogLimit.count()), m_phase.load(), progress.load());
        });
    }
    ~Watchdog()
    {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_done.notify_all();
        m_thread.join();
    }
    void setPhase(const char *phase) { m_phase = phase; }
    std::atomic<int> progress{0};

private:
    const char *m_test;
    std::atomic<const char *> m_phase{"start"};
    std::mutex m_mutex;
    std::condition_variable m_done;
    bool m_stop = false;
    std::thread m_thread;
};

class Failures
{
public:
    void add(const QString &text)
    {
        QMutexLocker lock(&m_mutex);
        if (m_texts.size() < 20)
            m_texts << text;
        ++m_count;
    }
    int count() const
    {
        QMutexLocker lock(&m_mutex);
        return m_count;
    }
    QString summary() const
    {
        QMutexLocker lock(&m_mutex);
        return QStringLiteral("%1 failures, first ones:\n  ").arg(m_count) + m_texts.join(QStringLiteral("\n  "));
    }

private:
    mutable QMutex m_mutex;
    QStringList m_texts;
    int m_count = 0;
};

struct Tracked
{
    QFuture<QVariant> future;
    QVariant expected;
    int emits = 0;         // results 1..emits expected when it completed
    bool canceled = false; // we canceled it: Cancelled or the right value
    QString what;
};

// Cancel now, after a few spins, or after giving up the CPU: the request is
// then queued on an isle, waiting in the pool, or running.
void cancelAtRandom(QFuture<QVariant> &future, QRandomGenerator &rng)
{
    switch (rng.bounded(3)) {
    case 0:
        break;
    case 1:
        for (int i = 0, n = int(rng.bounded(2000)); i < n; ++i)
            QThread::yieldCurrentThread();
        break;
    default:
        std::this_thread::sleep_for(std::chrono::microseconds(rng.bounded(3000)));
        break;
    }
    future.cancel();
}

void check(Tracked &t, Failures &failures, Watchdog &watchdog)
{
    try {
        const QVariant value = QIsle::waitFor(t.future);
        if (value != t.expected) {
            failures.add(QStringLiteral("%1: got %2, expected %3").arg(t.what, value.toString(), t.expected.toString()));
        } else {
            for (int i = 1; i <= t.emits; ++i) {
                if (!t.future.isResultReadyAt(i) || t.future.resultAt(i) != QVariant(qlonglong(i)))
                    failures.add(QStringLiteral("%1: emit %2 missing").arg(t.what).arg(i));
            }
        }
    } catch (const QIsleError &e) {
        if (!(t.canceled && e.kind() == QIsleError::Kind::Cancelled))
            failures.add(QStringLiteral("%1: %2").arg(t.what, QString::fromUtf8(e.what())));
    }
    ++watchdog.progress;
}

} // namespace

class tst_PoolStress : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void mixedTraffic();
    void destroyedWithWorkInFlight();
    void contextCallsWhileCheckingOut();
};

void tst_PoolStress::mixedTraffic()
{
    Watchdog watchdog("mixedTraffic");
    Failures failures;
    QIslePoolOptions options;
    options.size = 3;
    options.warm = false; // cold slots spawned under load too
    auto pool = QIslePool::spawn([](lua_State *L) {
        luaL_dostring(L, "function add(a, b) return a + b end "
                         "function sum(n) local s = 0 for i = 1, n do s = s + i end return s end");
    }, options);
    QIslePool *p = pool.get();
    pool->registerFunction(QStringLiteral("nestedAdd"), [p](const QVariantList &args) {
        // A blocking pool call on the pool's own Lua thread: inline.
        return p->call(QStringLiteral("add"), args);
    });

    std::atomic<bool> stop{false};
    std::atomic<int> leasesTaken{0};
    std::atomic<int> discards{0};
    std::atomic<int> heldCanceled{0};

    // Takes every isle now and then, so that requests wait in the pool.
    std::thread hog([&] {
        QRandomGenerator rng(4242);
        while (!stop.load()) {
            std::vector<QIsleLease> all;
            for (int i = 0; i < p->size(); ++i) {
                QIsleLease l = p->checkout(200ms);
                if (l)
                    all.push_back(std::move(l));
            }
            if (int(all.size()) == p->size()) {
                if (p->leasedCount() != p->size() || p->idleCount() != 0)
                    failures.add(QStringLiteral("counts with every isle leased: %1 leased, %2 idle")
                                         .arg(p->leasedCount()).arg(p->idleCount()));
                // Requests made now wait in the pool; cancel some of them.
                QList<QFuture<QVariant>> waiting;
                for (int i = 0; i < 4; ++i)
                    waiting << p->spawnEval(QStringLiteral("return %1").arg(i));
                waiting[1].cancel();
                waiting[3].cancel();
                for (int i : {1, 3}) {
                    QDeadlineTimer deadline(5000);
                    while (!waiting[i].isFinished() && !deadline.hasExpired())
                        QThread::yieldCurrentThread();
                    if (!waiting[i].isFinished())
                        failures.add(QStringLiteral("a canceled request waiting in the pool did not finish"));
                    else
                        ++heldCanceled;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(1 + rng.bounded(5)));
                // Release in random order; the first one back serves the waiting ones.
                while (!all.empty()) {
                    const auto at = all.begin() + rng.bounded(int(all.size()));
                    if (rng.bounded(10) == 0) {
                        at->discard();
                        ++discards;
                    }
                    all.erase(at);
                }
                for (int i : {0, 2}) {
                    try {
                        if (QIsle::waitFor(waiting[i]) != QVariant(qlonglong(i)))
                            failures.add(QStringLiteral("a held request gave a wrong value"));
                    } catch (const QIsleError &e) {
                        failures.add(QStringLiteral("held request: %1").arg(QString::fromUtf8(e.what())));
                    }
                }
            }
            all.clear();
            std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng.bounded(20)));
        }
    });

    auto caller = [&](int t) {
        QRandomGenerator rng(1000 + t);
        std::deque<Tracked> inFlight;
        const int iterations = scaled(1500);
        for (int i = 0; i < iterations; ++i) {
            const int r = int(rng.bounded(100));
            const qlonglong x = t * 100000 + i;
            if (r < 40) {
                // Non-blocking, sometimes with emits, sometimes canceled.
                const int n = 50 + int(rng.bounded(3000));
                Tracked tracked;
                if (r < 8) {
                    tracked.emits = 3;
                    tracked.future = p->spawnEval(QStringLiteral("for i = 1, 3 do isle.emit(i) end return sum(%1) + %2").arg(n).arg(x));
                } else if (r < 16) {
                    QIsleRequestOptions opts;
                    opts.timeout = 10s;
                    tracked.future = p->spawnCall(QStringLiteral("add"), {x, n}, opts);
                    tracked.expected = x + n;
                } else {
                    tracked.future = p->spawnEval(QStringLiteral("return sum(%1) + %2").arg(n).arg(x));
                }
                if (!tracked.expected.isValid())
                    tracked.expected = qlonglong(n) * (n + 1) / 2 + x;
                tracked.what = QStringLiteral("t%1 request %2").arg(t).arg(i);
                if (rng.bounded(10) == 0) {
                    tracked.canceled = true;
                    cancelAtRandom(tracked.future, rng);
                }
                inFlight.push_back(std::move(tracked));
                if (int(inFlight.size()) > Window) {
                    check(inFlight.front(), failures, watchdog);
                    inFlight.pop_front();
                }
            } else if (r < 55) {
                // Blocking calls, errors among them.
                try {
                    if (r < 45) {
                        if (p->call(QStringLiteral("add"), {x, 1}) != QVariant(x + 1))
                            failures.add(QStringLiteral("blocking call"));
                    } else if (r < 50) {
                        const QVariant v = p->exec([x](lua_State *) { return QVariant(x * 2); });
                        if (v != QVariant(x * 2))
                            failures.add(QStringLiteral("blocking exec"));
                    } else {
                        p->eval(QStringLiteral("error('expected')"));
                        failures.add(QStringLiteral("an error did not throw"));
                    }
                } catch (const QIsleError &e) {
                    if (!(r >= 50 && e.kind() == QIsleError::Kind::Runtime))
                        failures.add(QStringLiteral("blocking: %1").arg(QString::fromUtf8(e.what())));
                }
                ++watchdog.progress;
            } else if (r < 65) {
                // A blocking pool call nested on a Lua thread of the pool.
                try {
                    if (p->call(QStringLiteral("nestedAdd"), {x, 2}) != QVariant(x + 2))
                        failures.add(QStringLiteral("nested call"));
                } catch (const QIsleError &e) {
                    failures.add(QStringLiteral("nested: %1").arg(QString::fromUtf8(e.what())));
                }
                ++watchdog.progress;
            } else if (r < 90) {
                // A session on a lease.
                QIsleLease lease = (r < 80) ? p->checkout(2s) : p->tryCheckout();
                if (!lease)
                    continue;
                ++leasesTaken;
                try {
                    lease->eval(QStringLiteral("session = %1").arg(x));
                    QFuture<QVariant> f = lease->spawnEval(QStringLiteral("session = session + 1 return session"));
                    if (QIsle::waitFor(f) != QVariant(x + 1))
                        failures.add(QStringLiteral("lease session lost its state"));
                } catch (const QIsleError &e) {
                    failures.add(QStringLiteral("lease: %1").arg(QString::fromUtf8(e.what())));
                }
                const int what = int(rng.bounded(10));
                if (what < 2) {
                    // Used and released in another thread.
                    std::thread other([l = std::move(lease), x, &failures]() mutable {
                        try {
                            if (l->eval(QStringLiteral("return session")) != QVariant(x + 1))
                                failures.add(QStringLiteral("moved lease lost its state"));
                        } catch (const QIsleError &e) {
                            failures.add(QStringLiteral("moved lease: %1").arg(QString::fromUtf8(e.what())));
                        }
                    });
                    other.join();
                } else if (what < 4) {
                    // Discarded while a request runs on it.
                    QFuture<QVariant> endless = lease->spawnEval(QStringLiteral("while true do end"));
                    if (rng.bounded(2))
                        std::this_thread::sleep_for(std::chrono::microseconds(rng.bounded(2000)));
                    lease.discard();
                    ++discards;
                    if (!endless.isFinished())
                        failures.add(QStringLiteral("discard left a request unfinished"));
                }
                ++watchdog.progress;
            } else if (r < 95) {
                const QString name = QStringLiteral("reg_%1_%2").arg(t).arg(i);
                p->registerFunction(name, [x](const QVariantList &) { return QVariant(x); });
                try {
                    if (p->call(name) != QVariant(x))
                        failures.add(QStringLiteral("registration %1").arg(name));
                } catch (const QIsleError &e) {
                    failures.add(QStringLiteral("registration %1: %2").arg(name, QString::fromUtf8(e.what())));
                }
            } else {
                // Two calls, not one snapshot: each alone must be in range.
                const int leased = p->leasedCount();
                const int idle = p->idleCount();
                if (leased < 0 || idle < 0 || leased > 3 || idle > 3 || p->size() != 3)
                    failures.add(QStringLiteral("counts: %1 leased, %2 idle").arg(leased).arg(idle));
            }
        }
        for (Tracked &tracked : inFlight)
            check(tracked, failures, watchdog);
    };

    watchdog.setPhase("traffic");
    std::vector<std::thread> callers;
    for (int t = 0; t < CallerThreads; ++t)
        callers.emplace_back(caller, t);
    for (auto &c : callers)
        c.join();
    stop = true;
    hog.join();

    watchdog.setPhase("settle");
    QVERIFY2(failures.count() == 0, qPrintable(failures.summary()));
    QTRY_COMPARE(pool->leasedCount(), 0);
    QTRY_COMPARE_WITH_TIMEOUT(pool->idleCount(), 3, 10000);
    QVERIFY(leasesTaken.load() > 0);
    QVERIFY(heldCanceled.load() > 0);
    for (int i = 0; i < 10; ++i)
        QCOMPARE(pool->call(QStringLiteral("add"), {i, 1}), QVariant(qlonglong(i + 1)));
    qInfo("%d leases, %d discards, %d canceled while waiting in the pool, %d checked",
          leasesTaken.load(), discards.load(), heldCanceled.load(), watchdog.progress.load());
}

void tst_PoolStress::destroyedWithWorkInFlight()
{
    Watchdog watchdog("destroyedWithWorkInFlight");
    QRandomGenerator rng(7);
    const int rounds = scaled(30);
    for (int round = 0; round < rounds; ++round) {
        QIslePoolOptions options;
        options.size = 1 + int(rng.bounded(3));
        options.warm = rng.bounded(2);
        auto pool = QIslePool::spawn({}, options);
        QList<QFuture<QVariant>> futures;
        for (int i = 0; i < 10; ++i) {
            futures << pool->spawnEval(rng.bounded(3) ? QStringLiteral("return %1").arg(i)
                                                      : QStringLiteral("while true do end"));
            if (rng.bounded(5) == 0)
                futures.last().cancel();
        }
        // Sometimes every isle leased, with requests waiting in the pool.
        std::vector<QIsleLease> leases;
        if (rng.bounded(2)) {
            for (int i = 0; i < options.size; ++i) {
                leases.push_back(pool->checkout(100ms));
            }
            for (int i = 0; i < 5; ++i)
                futures << pool->spawnEval(QStringLiteral("return 'held'"));
        }
        // A lease kept past the pool.
        QIsleLease survivor = leases.empty() ? pool->tryCheckout() : std::move(leases.back());
        if (!leases.empty())
            leases.pop_back();
        leases.clear(); // released: the waiting requests reach an isle, maybe running
        std::this_thread::sleep_for(std::chrono::microseconds(rng.bounded(3000)));
        QElapsedTimer timer;
        timer.start();
        pool.reset();
        QVERIFY2(timer.elapsed() < 2000, qPrintable(QStringLiteral("destruction took %1 ms").arg(timer.elapsed())));
        for (const auto &f : futures)
            QVERIFY(f.isFinished());
        if (survivor) {
            try {
                survivor->eval(QStringLiteral("return 1"));
                QFAIL("a lease of a destroyed pool still served");
            } catch (const QIsleError &e) {
                QCOMPARE(e.kind(), QIsleError::Kind::Shutdown);
            }
        }
        if (rng.bounded(2))
            survivor.discard();
        ++watchdog.progress;
    }
}

void tst_PoolStress::contextCallsWhileCheckingOut()
{
    // Each thread owns a context object and registers a function on it;
    // every thread's scripts call every thread's function. A thread blocked
    // in checkout() (timed or not), in the pool's eval, in a lease's eval, in
    // waitFor or in a discard must answer the calls posted to it, or the
    // scripts it waits for never end. Exposed objects and discards (whose
    // fresh isles replay every registration) come meanwhile.
    Watchdog watchdog("contextCallsWhileCheckingOut");
    Failures failures;
    constexpr int Threads = 4;
    QIslePoolOptions options;
    options.size = 2;
    options.warm = false;
    auto pool = QIslePool::spawn({}, options);
    std::atomic<int> registered{0};
    std::atomic<int> finished{0};
    QPromise<QVariant> allDone; // waited for with QIsle::waitFor: the mailbox runs meanwhile
    allDone.start();
    std::atomic<int> checkouts{0};
    const int iterations = scaled(120);
    QIsleRequestOptions bounded; // a missed answer ends as Timeout, reported, not as a hang
    bounded.timeout = 20s;

    std::vector<std::thread> threads;
    for (int t = 0; t < Threads; ++t) {
        threads.emplace_back([&, t] {
            QObject context; // lives in this thread
            QThread *const self = QThread::currentThread();
            pool->registerFunction(QStringLiteral("ctx%1").arg(t), &context, [self, t](const QVariantList &args) {
                if (QThread::currentThread() != self)
                    return QVariant(-1);
                return QVariant(args.value(0).toLongLong() + 1000 * t);
            });
            ++registered;
            while (registered.load() < Threads)
                std::this_thread::yield();
            QRandomGenerator rng(quint32(100 + t));
            std::deque<Tracked> window;
            const auto callChunk = [&](int k) {
                const int target = int(rng.bounded(Threads));
                return std::make_pair(QStringLiteral("isle.sleep(%1) return ctx%2(%3)")
                                              .arg(rng.bounded(3))
                                              .arg(target)
                                              .arg(k),
                                      QVariant(qlonglong(k + 1000 * target)));
            };
            const auto viaLease = [&](QIsleLease &lease, int i) {
                const auto [chunk, expected] = callChunk(i);
                try {
                    const QVariant got = lease->eval(chunk, bounded);
                    if (got != expected)
                        failures.add(QStringLiteral("lease %1: got %2").arg(chunk, got.toString()));
                } catch (const QIsleError &e) {
                    failures.add(QStringLiteral("lease %1: %2").arg(chunk, e.message()));
                }
                if (rng.bounded(4) == 0)
                    lease.discard();
                else
                    lease.release();
            };
            for (int i = 0; i < iterations; ++i) {
                switch (rng.bounded(6)) {
                case 0: {
                    QIsleLease lease = pool->checkout();
                    ++checkouts;
                    viaLease(lease, i);
                    break;
                }
                case 1: {
                    QIsleLease lease = pool->checkout(std::chrono::milliseconds(rng.bounded(30)));
                    if (lease) {
                        ++checkouts;
                        viaLease(lease, i);
                    }
                    break;
                }
                case 2: {
                    const auto [chunk, expected] = callChunk(i);
                    try {
                        const QVariant got = pool->eval(chunk, bounded);
                        if (got != expected)
                            failures.add(QStringLiteral("eval %1: got %2").arg(chunk, got.toString()));
                    } catch (const QIsleError &e) {
                        failures.add(QStringLiteral("eval %1: %2").arg(chunk, e.message()));
                    }
                    break;
                }
                case 3:
                    if (rng.bounded(20) == 0)
                        pool->exposeObject(QStringLiteral("objects.t%1").arg(t), &context);
                    break;
                default: {
                    const auto [chunk, expected] = callChunk(i);
                    Tracked tracked{pool->spawnEval(chunk, bounded), expected, 0, false, chunk};
                    if (rng.bounded(4) == 0) {
                        tracked.canceled = true;
                        cancelAtRandom(tracked.future, rng);
                    }
                    window.push_back(std::move(tracked));
                    break;
                }
                }
                while (int(window.size()) > Window || (!window.empty() && rng.bounded(3) == 0)) {
                    check(window.front(), failures, watchdog); // waitFor: answers calls meanwhile
                    window.pop_front();
                }
            }
            while (!window.empty()) {
                check(window.front(), failures, watchdog);
                window.pop_front();
            }
            // Serve the others until every thread is done: nothing calls
            // into this thread afterwards.
            if (++finished == Threads)
                allDone.finish();
            else
                QIsle::waitFor(allDone.future());
        });
    }
    for (std::thread &thread : threads)
        thread.join();
    watchdog.setPhase("settle");
    QVERIFY2(failures.count() == 0, qPrintable(failures.summary()));
    QTRY_COMPARE_WITH_TIMEOUT(pool->idleCount(), 2, 10000);
    // The contexts are gone: their functions say so, on every isle.
    std::vector<QIsleLease> leases;
    for (int i = 0; i < 2; ++i) {
        leases.push_back(pool->checkout(10s));
        QVERIFY(leases.back());
        const QString message = leases.back()->eval(QStringLiteral("return select(2, pcall(ctx0))")).toString();
        QVERIFY2(message.contains(QStringLiteral("destroyed")), qPrintable(message));
    }
    QVERIFY(checkouts.load() > 0);
    qInfo("%d checkouts, %d checked", checkouts.load(), watchdog.progress.load());
}

QTEST_GUILESS_MAIN(tst_PoolStress)
#include "tst_poolstress.moc"
