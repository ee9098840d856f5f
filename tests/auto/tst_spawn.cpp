// QIsle::spawn as it starts an isle: the VM built on the calling thread while
// the isle's thread starts and handed over (issue 18), without init ready
// before that thread has run (requests queue behind its libraries), the collector
// running again once the libraries are open, memory counted from the first
// byte, limits that fail the libraries, and the event loop the Lua thread
// runs (timers, posted events, socket notifiers), whatever Qt dispatcher it is.
#include <QIsle/QIsle>
#include <QIsle/QIsleLua>

#include <QtCore/QAbstractEventDispatcher>
#include <QtCore/QSocketNotifier>
#include <QtCore/QTimer>
#include <QtTest/QtTest>

#include <atomic>
#include <thread>
#include <vector>

#include <pthread.h>
#include <unistd.h>

class tst_Spawn : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initSeesLibrariesAndARunningCollector();
    void readyBeforeTheLuaThreadRuns();
    void destroyedRightAfterSpawn();
    void usedMemoryCountsEveryByte();
    void limitAroundTheLibraries_data();
    void limitAroundTheLibraries();
    void sandboxPresetStillApplies();
    void spawnsFromManyThreadsAtOnce_data();
    void spawnsFromManyThreadsAtOnce();
    void timersOnTheLuaThread();
    void socketNotifierOnTheLuaThread();
    void requestsRunInANestedEventLoop_data();
    void requestsRunInANestedEventLoop();
    void threadNameIsKept();
    void deepCallsAfterTheIdleStackWasReleased();
};

void tst_Spawn::initSeesLibrariesAndARunningCollector()
{
    bool running = false;
    int stringType = LUA_TNIL;
    int isleType = LUA_TNIL;
    auto isle = QIsle::spawn([&](lua_State *L) {
        running = lua_gc(L, LUA_GCISRUNNING) != 0;
        stringType = lua_getglobal(L, "string");
        isleType = lua_getglobal(L, "isle");
        lua_pop(L, 2);
    });
    QVERIFY(running);
    QCOMPARE(stringType, LUA_TTABLE);
    QCOMPARE(isleType, LUA_TTABLE);
    QCOMPARE(isle->eval(QStringLiteral("return collectgarbage('isrunning')")).toBool(), true);
    QCOMPARE(isle->eval(QStringLiteral("return string.upper('ok') .. math.floor(2.5)")).toString(), QStringLiteral("OK2"));
}

// Without init, spawn() returns without waiting for the Lua thread, which
// opens QIsle's libraries before any request: what spawn() returns is
// complete at once -- its stop mode, its memory, its queue (the libraries
// are no request: maxPending 1 takes one at once), every library.
void tst_Spawn::readyBeforeTheLuaThreadRuns()
{
    for (int round = 0; round < 20; ++round) {
        QIsleOptions options;
        options.maxPending = 1;
        options.stopMode = QIsleOptions::StopMode::Hook;
        auto isle = QIsle::spawn({}, options);
        QCOMPARE(isle->stopMode(), QIsleOptions::StopMode::Hook);
        QVERIFY2(isle->usedMemory() > 16 * 1024, qPrintable(QString::number(isle->usedMemory()))); // Lua's libraries
        QFuture<QVariant> first = isle->spawnEval(QStringLiteral(
                "return type(isle.sleep) .. type(isle.spawn) .. type(isle.channel) .. type(coroutine.wrap) .. "
                "type(string.upper) .. tostring(collectgarbage('isrunning'))"));
        QCOMPARE(QIsle::waitFor(first).toString(), QStringLiteral("functionfunctionfunctionfunctionfunctiontrue"));
    }
}

// Destroyed or shut down before its thread opened the libraries: every
// future finishes; shutdown() still runs what was queued.
void tst_Spawn::destroyedRightAfterSpawn()
{
    for (int round = 0; round < 20; ++round) {
        QFuture<QVariant> canceled;
        {
            auto isle = QIsle::spawn();
            canceled = isle->spawnEval(QStringLiteral("return 1"));
        }
        QVERIFY(canceled.isFinished());
        auto isle = QIsle::spawn();
        QFuture<QVariant> served = isle->spawnCall(QStringLiteral("tostring"), {42});
        isle->shutdown();
        QVERIFY(served.isFinished());
        QCOMPARE(QIsle::waitFor(served).toString(), QStringLiteral("42"));
    }
}

// The bytes of the VM made on spawn()'s thread count toward usedMemory()
// exactly as those made on the Lua thread: Lua's own count agrees.
void tst_Spawn::usedMemoryCountsEveryByte()
{
    QIsleOptions options;
    options.memoryLimit = 1024 * 1024;
    auto isle = QIsle::spawn({}, options);
    const QVariantList both = isle->exec([&](lua_State *L) {
        const qlonglong lua = qlonglong(lua_gc(L, LUA_GCCOUNT)) * 1024 + lua_gc(L, LUA_GCCOUNTB);
        return QVariant(QVariantList{lua, qlonglong(isle->usedMemory())});
    }).toList();
    QCOMPARE(both.size(), 2);
    QVERIFY(both.at(0).toLongLong() > 4096);
    QCOMPARE(both.at(1).toLongLong(), both.at(0).toLongLong());
}

// A limit too small for the libraries fails spawn with Init, whichever
// thread ran out; one just big enough gives a working isle. Never a crash
// or a leak (ASan).
void tst_Spawn::limitAroundTheLibraries_data()
{
    QTest::addColumn<qsizetype>("limit");
    for (qsizetype kib : {1, 4, 6, 8, 12, 16, 18, 20, 22, 24, 26, 28, 32, 64})
        QTest::addRow("%lld KiB", qlonglong(kib)) << kib * 1024;
}

void tst_Spawn::limitAroundTheLibraries()
{
    QFETCH(qsizetype, limit);
    QIsleOptions options;
    options.memoryLimit = limit;
    std::unique_ptr<QIsle> isle;
    try {
        isle = QIsle::spawn({}, options);
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Init);
        QVERIFY2(limit < 64 * 1024, qPrintable(e.message()));
        return;
    }
    QVERIFY(limit > 4 * 1024);
    QVERIFY(isle->usedMemory() <= limit);
    // It serves (or fails a request with Memory), and lives on.
    try {
        QCOMPARE(isle->eval(QStringLiteral("return 1 + 1")).toLongLong(), 2LL);
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Memory);
    }
    QVERIFY(isle->isAlive());
    if (limit >= 64 * 1024)
        QCOMPARE(isle->eval(QStringLiteral("return #string.rep('x', 1000)")).toLongLong(), 1000LL);
}

void tst_Spawn::sandboxPresetStillApplies()
{
    QIsleOptions options;
    options.libraries = QIsleOptions::SandboxLibraries;
    auto isle = QIsle::spawn({}, options);
    QCOMPARE(isle->eval(QStringLiteral("return type(io) .. type(os) .. type(loadfile) .. type(string.dump)")).toString(),
             QStringLiteral("nilnilnilfunction"));
    QVERIFY_THROWS_EXCEPTION(QIsleError, isle->eval(QStringLiteral("string.dump(print)")));
}

// Hand-overs of many spawns at once (ThreadSanitizer sees their order),
// waited for (an init) or not.
void tst_Spawn::spawnsFromManyThreadsAtOnce_data()
{
    QTest::addColumn<bool>("withInit");
    QTest::newRow("init") << true;
    QTest::newRow("no init") << false;
}

void tst_Spawn::spawnsFromManyThreadsAtOnce()
{
    QFETCH(bool, withInit);
    std::atomic<int> served{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&served, t, withInit] {
            for (int i = 0; i < 10; ++i) {
                QIsle::Init init;
                if (withInit) {
                    init = [t](lua_State *L) {
                        lua_pushinteger(L, t);
                        lua_setglobal(L, "who");
                    };
                }
                auto isle = QIsle::spawn(init);
                const QString who = withInit ? QStringLiteral("return who") : QStringLiteral("return %1").arg(t);
                if (isle->eval(who).toInt() == t)
                    served.fetch_add(1);
            }
        });
    }
    for (std::thread &thread : threads)
        thread.join();
    QCOMPARE(served.load(), 40);
}

// Host code may use Qt's event loop on the Lua thread: timers fire there.
void tst_Spawn::timersOnTheLuaThread()
{
    auto isle = QIsle::spawn();
    std::atomic<int> fired{0};
    std::atomic<bool> onLuaThread{false};
    bool hasDispatcher = false;
    isle->exec([&](lua_State *) {
        hasDispatcher = QAbstractEventDispatcher::instance() != nullptr;
        const QThread *luaThread = QThread::currentThread();
        auto *timer = new QTimer;
        timer->setInterval(5);
        QObject::connect(timer, &QTimer::timeout, timer, [&, timer, luaThread] {
            onLuaThread.store(QThread::currentThread() == luaThread);
            if (fired.fetch_add(1) + 1 == 3) {
                timer->stop();
                timer->deleteLater();
            }
        });
        timer->start();
        return QVariant();
    });
    QVERIFY(hasDispatcher);
    QTRY_COMPARE_WITH_TIMEOUT(fired.load(), 3, 5000);
    QVERIFY(onLuaThread.load());
    QCOMPARE(isle->eval(QStringLiteral("return 40 + 2")).toInt(), 42);
}

// ... and socket notifiers (a pipe written from this thread). While the
// thread has one it sleeps in Qt's poll(), otherwise on the dispatcher's
// futex: requests wake it either way.
void tst_Spawn::socketNotifierOnTheLuaThread()
{
    int fds[2];
    QCOMPARE(::pipe(fds), 0);
    auto isle = QIsle::spawn();
    std::atomic<int> readBytes{0};
    QSocketNotifier *notifier = nullptr;
    isle->exec([&](lua_State *) {
        notifier = new QSocketNotifier(fds[0], QSocketNotifier::Read);
        QObject::connect(notifier, &QSocketNotifier::activated, notifier, [&] {
            char buffer[16];
            const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
            if (n > 0)
                readBytes.fetch_add(int(n));
        });
        return QVariant();
    });
    QCOMPARE(::write(fds[1], "abc", 3), ssize_t(3));
    QTRY_COMPARE_WITH_TIMEOUT(readBytes.load(), 3, 5000);
    for (int i = 0; i < 20; ++i) { // the thread sleeps in Qt's poll() between these
        auto twice = isle->spawnEval(QStringLiteral("return 1 + 1"));
        QTRY_VERIFY_WITH_TIMEOUT(twice.isFinished(), 5000);
        QCOMPARE(twice.result().toInt(), 2);
    }
    QCOMPARE(::write(fds[1], "de", 2), ssize_t(2));
    QTRY_COMPARE_WITH_TIMEOUT(readBytes.load(), 5, 5000);

    isle->exec([&](lua_State *) {
        delete notifier;
        return QVariant();
    });
    auto later = isle->spawnEval(QStringLiteral("return 40 + 2"));
    QTRY_VERIFY_WITH_TIMEOUT(later.isFinished(), 5000); // the futex again
    QCOMPARE(later.result().toInt(), 42);
    isle->shutdown();
    ::close(fds[0]);
    ::close(fds[1]);
}

// Host code on the Lua thread that spins an event loop of its own (here a
// queued call's handler) still lets requests run meanwhile, as they did when
// a posted event woke the worker -- with a socket notifier on the thread
// (Qt's poll) and without (the dispatcher's futex).
void tst_Spawn::requestsRunInANestedEventLoop_data()
{
    QTest::addColumn<bool>("notifier");
    QTest::addRow("futex") << false;
    QTest::addRow("Qt's poll") << true;
}

void tst_Spawn::requestsRunInANestedEventLoop()
{
    QFETCH(bool, notifier);
    int fds[2];
    QCOMPARE(::pipe(fds), 0);
    auto isle = QIsle::spawn();
    std::atomic<bool> inNestedLoop{false};
    std::atomic<bool> nestedLoopDone{false};
    isle->exec([&](lua_State *) {
        if (notifier)
            new QSocketNotifier(fds[0], QSocketNotifier::Read, QAbstractEventDispatcher::instance());
        QTimer::singleShot(0, QAbstractEventDispatcher::instance(), [&] {
            QEventLoop loop;
            QTimer::singleShot(3000, &loop, &QEventLoop::quit);
            inNestedLoop = true;
            loop.exec();
            nestedLoopDone = true;
        });
        return QVariant();
    });
    QTRY_VERIFY_WITH_TIMEOUT(inNestedLoop.load(), 5000);
    QElapsedTimer timer;
    timer.start();
    auto result = isle->spawnEval(QStringLiteral("return 6 * 7"));
    QTRY_VERIFY_WITH_TIMEOUT(result.isFinished(), 2000); // not after the nested loop
    QCOMPARE(result.result().toInt(), 42);
    QVERIFY2(!nestedLoopDone.load(), "ran only once the nested loop was over");
    QVERIFY2(timer.elapsed() < 2000, qPrintable(QString::number(timer.elapsed())));
    isle->shutdown();
    ::close(fds[0]);
    ::close(fds[1]);
}

void tst_Spawn::threadNameIsKept()
{
    QIsleOptions options;
    options.threadName = QStringLiteral("spawn-name");
    QString seen;
    auto isle = QIsle::spawn([&](lua_State *) { seen = QThread::currentThread()->objectName(); }, options);
    QCOMPARE(seen, QStringLiteral("spawn-name"));
    char name[32] = {};
    const QVariant os = isle->exec([&](lua_State *) {
        pthread_getname_np(pthread_self(), name, sizeof name);
        return QVariant(QString::fromLatin1(name));
    });
    QCOMPARE(os.toString(), QStringLiteral("spawn-name"));
}

// Once idle after spawn, the Lua thread gives back the stack pages below its
// event loop: they come back (zeroed) when a request runs deep again, also
// while the monitor's stop signal lands there.
void tst_Spawn::deepCallsAfterTheIdleStackWasReleased()
{
    const QString deep = QStringLiteral(
            "local function f(n) if n == 0 then return 0 end local ok, v = pcall(f, n - 1) return v + 1 end "
            "return f(150) + #string.rep('x', 100000):gsub('x', 'y')");
    for (int round = 0; round < 3; ++round) {
        auto isle = QIsle::spawn();
        QTest::qWait(5); // idle: the release has happened
        QCOMPARE(isle->eval(deep).toLongLong(), 150LL + 100000LL);
        QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
                "local function g(n) if n == 0 then while true do end end return pcall(g, n - 1) end g(100)"));
        QTest::qWait(20);
        f.cancel();
        QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
        QCOMPARE(isle->eval(deep).toLongLong(), 150LL + 100000LL);
    }
}

QTEST_MAIN(tst_Spawn)
#include "tst_spawn.moc"
