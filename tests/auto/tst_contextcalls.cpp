// Calls into other threads without deadlock: registerFunction with a context
// object runs in the context's thread; a thread blocked in one of QIsle's
// blocking calls (eval, call, exec, waitFor, shutdown, destruction) runs the
// calls scripts post to it, and nothing else (DESIGN, "Calls into other
// threads; QObjects in Lua").
#include <QIsle/QIsle>
#include <QIsle/QIsleLua>

#include <QtTest/QtTest>

#include <atomic>
#include <thread>

using namespace Qt::StringLiterals;

namespace {

class EventThread : public QThread
{
public:
    explicit EventThread(const QString &name) { setObjectName(name); start(); }
    ~EventThread() override
    {
        quit();
        wait();
    }
};

// Counts the events a main-thread object receives (none may run while the
// main thread is blocked in QIsle).
class EventCounter : public QObject
{
public:
    int events = 0;

protected:
    bool event(QEvent *e) override
    {
        if (e->type() == QEvent::User)
            ++events;
        return QObject::event(e);
    }
};

QString threadName()
{
    return QThread::currentThread()->objectName();
}

} // namespace

class tst_ContextCalls : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();

    void runsInContextThread_data();
    void runsInContextThread();
    void mainThreadBlockedInEval();
    void mainThreadBlockedInCallAndExec();
    void mainThreadBlockedInWaitFor();
    void mainThreadBlockedInShutdown();
    void mainThreadBlockedInDestruction();
    void mainThreadRunningItsEventLoop();
    void onlyPostedCallsRunWhileBlocked();
    void argumentsAndResults();
    void exceptionsBecomeLuaErrors();
    void contextDestroyedBeforeCall();
    void contextDestroyedBeforeTheCallRuns();
    void contextDestroyedDuringCall();
    void cancelWhileWaiting();
    void timeoutWhileWaiting();
    void suspendWhileWaiting();
    void childRequestFromContextFunction();
    void childSpawnFromContextFunction();
    void nullContextIsLuaThread();
    void twoIslesCallEachOther();
    void manyThreadsCallIntoMainThread();
};

void tst_ContextCalls::initTestCase()
{
    QThread::currentThread()->setObjectName(u"main"_s);
}

void tst_ContextCalls::runsInContextThread_data()
{
    QTest::addColumn<QString>("where");
    QTest::addRow("main") << u"main"_s;
    QTest::addRow("third") << u"third"_s;
    QTest::addRow("lua") << u"lua"_s;
}

void tst_ContextCalls::runsInContextThread()
{
    QFETCH(QString, where);
    QIsleOptions options;
    options.threadName = u"lua"_s;
    auto isle = QIsle::spawn({}, options);
    EventThread third(u"third"_s);
    QObject *context = nullptr;
    if (where == u"main"_s) {
        context = new QObject;
    } else if (where == u"third"_s) {
        context = new QObject;
        context->moveToThread(&third);
    } else {
        context = qvariant_cast<QObject *>(isle->exec([](lua_State *) { return QVariant::fromValue(new QObject); }));
    }
    isle->registerFunction(u"app.where"_s, context, [](const QVariantList &) { return QVariant(threadName()); });
    QCOMPARE(isle->eval(u"return app.where()"_s), QVariant(where));
    if (where == u"lua"_s)
        isle->exec([context](lua_State *) { delete context; return QVariant(); });
    else if (where == u"third"_s)
        QMetaObject::invokeMethod(context, [context] { delete context; }, Qt::BlockingQueuedConnection);
    else
        delete context;
}

void tst_ContextCalls::mainThreadBlockedInEval()
{
    auto isle = QIsle::spawn();
    QObject gui;
    int calls = 0;
    isle->registerFunction(u"gui.title"_s, &gui, [&](const QVariantList &args) {
        ++calls;
        return QVariant(threadName() + u':' + args.value(0).toString());
    });
    // The main thread waits in eval for a script that waits for the main thread.
    QCOMPARE(isle->eval(u"local parts = {} for i = 1, 50 do parts[i] = gui.title(i) end return parts[50]"_s),
             QVariant(u"main:50"_s));
    QCOMPARE(calls, 50);
}

void tst_ContextCalls::mainThreadBlockedInCallAndExec()
{
    auto isle = QIsle::spawn();
    QObject gui;
    isle->registerFunction(u"twice"_s, &gui, [](const QVariantList &args) {
        return QVariant(args.value(0).toLongLong() * 2);
    });
    isle->eval(u"function viaGui(n) return twice(n) end"_s);
    QCOMPARE(isle->call(u"viaGui"_s, {21}), QVariant(qlonglong(42)));
    QCOMPARE(isle->exec([](lua_State *L) {
        lua_getglobal(L, "viaGui");
        lua_pushinteger(L, 5);
        lua_call(L, 1, 1);
        const qlonglong n = lua_tointeger(L, -1);
        lua_pop(L, 1);
        return QVariant(n);
    }), QVariant(qlonglong(10)));
}

void tst_ContextCalls::mainThreadBlockedInWaitFor()
{
    auto isle = QIsle::spawn();
    QObject gui;
    isle->registerFunction(u"where"_s, &gui, [](const QVariantList &) { return QVariant(threadName()); });
    const QFuture<QVariant> job = isle->spawnEval(u"return where()"_s);
    // The application's own continuation on the same future is kept.
    bool continued = false;
    auto chained = QFuture<QVariant>(job).then(QtFuture::Launch::Sync, [&](QVariant) { continued = true; });
    QCOMPARE(QIsle::waitFor(job), QVariant(u"main"_s));
    QTRY_VERIFY_WITH_TIMEOUT(continued, 5000);
    Q_UNUSED(chained);
}

void tst_ContextCalls::mainThreadBlockedInShutdown()
{
    auto isle = QIsle::spawn();
    QObject gui;
    std::atomic<int> calls{0};
    isle->registerFunction(u"tick"_s, &gui, [&](const QVariantList &) {
        ++calls;
        return QVariant();
    });
    const QFuture<QVariant> job = isle->spawnEval(u"for i = 1, 20 do tick() end return 'done'"_s);
    isle->shutdown(); // runs what is queued, which calls into this thread
    QCOMPARE(calls.load(), 20);
    QCOMPARE(QIsle::waitFor(job), QVariant(u"done"_s));
}

void tst_ContextCalls::mainThreadBlockedInDestruction()
{
    auto isle = QIsle::spawn();
    QObject gui;
    std::atomic<bool> called{false};
    isle->registerFunction(u"tick"_s, &gui, [&](const QVariantList &) {
        called = true;
        return QVariant();
    });
    const QFuture<QVariant> job = isle->spawnEval(u"while true do tick() end"_s);
    QTRY_VERIFY_WITH_TIMEOUT(called.load(), 5000);
    QElapsedTimer timer;
    timer.start();
    isle.reset(); // cancels the script, which waits for this thread
    QVERIFY2(timer.elapsed() < 1000, qPrintable(QString::number(timer.elapsed())));
    QVERIFY(job.isFinished());
}

void tst_ContextCalls::mainThreadRunningItsEventLoop()
{
    auto isle = QIsle::spawn();
    QObject gui;
    isle->registerFunction(u"where"_s, &gui, [](const QVariantList &) { return QVariant(threadName()); });
    const QFuture<QVariant> job = isle->spawnEval(u"local w for i = 1, 20 do w = where() end return w"_s);
    // Delivered through the event loop (QTRY spins it).
    QTRY_VERIFY_WITH_TIMEOUT(job.isFinished(), 5000);
    QCOMPARE(job.result(), QVariant(u"main"_s));
}

void tst_ContextCalls::onlyPostedCallsRunWhileBlocked()
{
    auto isle = QIsle::spawn();
    QObject gui;
    EventCounter other;
    bool timerFired = false;
    QTimer::singleShot(0, &other, [&] { timerFired = true; });
    QCoreApplication::postEvent(&other, new QEvent(QEvent::User));
    int eventsSeenDuringCall = -1;
    bool timerSeenDuringCall = true;
    isle->registerFunction(u"probe"_s, &gui, [&](const QVariantList &) {
        eventsSeenDuringCall = other.events;
        timerSeenDuringCall = timerFired;
        return QVariant(true);
    });
    QCOMPARE(isle->eval(u"return probe()"_s), QVariant(true));
    QCOMPARE(eventsSeenDuringCall, 0);
    QCOMPARE(timerSeenDuringCall, false);
    // They run later, in the event loop, as usual.
    QTRY_COMPARE_WITH_TIMEOUT(other.events, 1, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(timerFired, 5000);
}

void tst_ContextCalls::argumentsAndResults()
{
    auto isle = QIsle::spawn();
    QObject gui;
    gui.setObjectName(u"gui"_s);
    QVariantList seen;
    isle->registerFunction(u"echo"_s, &gui, [&](const QVariantList &args) {
        seen = args;
        return QVariant(args);
    });
    isle->exposeObject(u"guiObject"_s, &gui);
    QCOMPARE(isle->eval(u"local r = echo(1, 'two', {3}, guiObject) return r[2]"_s), QVariant(u"two"_s));
    QCOMPARE(seen.size(), 4);
    QCOMPARE(qvariant_cast<QObject *>(seen.at(3)), &gui);
    QCOMPARE(isle->eval(u"return rawequal(echo(guiObject)[1], guiObject)"_s), QVariant(true));
    // An argument that does not convert: a Conversion error, nothing runs.
    seen.clear();
    try {
        isle->eval(u"echo(print)"_s);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QCOMPARE(e.message(), u"args[1]: cannot convert a function"_s);
    }
    QVERIFY(seen.isEmpty());
}

void tst_ContextCalls::exceptionsBecomeLuaErrors()
{
    auto isle = QIsle::spawn();
    QObject gui;
    isle->registerFunction(u"boom"_s, &gui, [](const QVariantList &) -> QVariant {
        throw std::runtime_error("gui said no");
    });
    QCOMPARE(isle->eval(u"local ok, e = pcall(boom) return ok == false and e"_s), QVariant(u"gui said no"_s));
    try {
        isle->eval(u"boom()"_s);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Callback);
        QCOMPARE(e.message(), u"gui said no"_s);
    }
    isle->registerFunction(u"boom2"_s, &gui, [](const QVariantList &) -> QVariant {
        throw QIsleError(QIsleError::Kind::Runtime, u"typed"_s);
    });
    try {
        isle->eval(u"boom2()"_s);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Callback);
        QCOMPARE(e.message(), u"typed"_s);
    }
}

void tst_ContextCalls::contextDestroyedBeforeCall()
{
    auto isle = QIsle::spawn();
    auto *gui = new QObject;
    isle->registerFunction(u"f"_s, gui, [](const QVariantList &) { return QVariant(1); });
    delete gui;
    try {
        isle->eval(u"f()"_s);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.message(), u"the context object of 'f' was destroyed"_s);
    }
    QCOMPARE(isle->eval(u"local ok, e = pcall(f) return e"_s), QVariant(u"the context object of 'f' was destroyed"_s));
}

void tst_ContextCalls::contextDestroyedBeforeTheCallRuns()
{
    // The call is posted; the context dies before the main thread runs it.
    auto isle = QIsle::spawn();
    auto *gui = new QObject;
    std::atomic<bool> ran{false};
    isle->registerFunction(u"f"_s, gui, [&](const QVariantList &) {
        ran = true;
        return QVariant(1);
    });
    QFuture<QVariant> job = isle->spawnEval(u"local ok, e = pcall(f) return e"_s);
    QThread::msleep(50); // the script has posted its call; this thread runs no events
    delete gui;
    QTRY_VERIFY_WITH_TIMEOUT(job.isFinished(), 5000);
    QVERIFY(!ran);
    QVERIFY2(job.result().toString().contains(u"destroyed"_s), qPrintable(job.result().toString()));
}

void tst_ContextCalls::contextDestroyedDuringCall()
{
    // The function deletes its own context: the answer still arrives.
    auto isle = QIsle::spawn();
    auto *gui = new QObject;
    isle->registerFunction(u"f"_s, gui, [&](const QVariantList &) {
        delete gui;
        return QVariant(u"answered"_s);
    });
    QCOMPARE(isle->eval(u"return f()"_s), QVariant(u"answered"_s));
    QVERIFY_THROWS_EXCEPTION(QIsleError, isle->eval(u"return f()"_s));
}

void tst_ContextCalls::cancelWhileWaiting()
{
    auto isle = QIsle::spawn();
    QObject gui;
    std::atomic<int> ran{0};
    isle->registerFunction(u"f"_s, &gui, [&](const QVariantList &) {
        ++ran;
        return QVariant();
    });
    QFuture<QVariant> job = isle->spawnEval(u"f() return 'not reached'"_s);
    QThread::msleep(50); // posted, not run: this thread is busy
    job.cancel();
    // Without running this thread's events, the request ends canceled...
    QElapsedTimer timer;
    timer.start();
    while (!job.isFinished() && timer.elapsed() < 5000)
        QThread::msleep(1);
    QVERIFY(job.isFinished());
    QVERIFY(job.isCanceled());
    // ...and the call that never started is dropped.
    QCoreApplication::processEvents();
    QTest::qWait(20);
    QCOMPARE(ran.load(), 0);
    QCOMPARE(isle->eval(u"return 'serving'"_s), QVariant(u"serving"_s));
}

void tst_ContextCalls::timeoutWhileWaiting()
{
    auto isle = QIsle::spawn();
    QObject gui;
    isle->registerFunction(u"f"_s, &gui, [](const QVariantList &) { return QVariant(); });
    QIsleRequestOptions options;
    options.timeout = std::chrono::milliseconds(50);
    QFuture<QVariant> job = isle->spawnEval(u"f()"_s, options);
    QElapsedTimer timer;
    timer.start();
    while (!job.isFinished() && timer.elapsed() < 5000)
        QThread::msleep(1);
    try {
        QIsle::waitFor(job);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Timeout);
    }
}

void tst_ContextCalls::suspendWhileWaiting()
{
    auto isle = QIsle::spawn();
    QObject gui;
    isle->registerFunction(u"f"_s, &gui, [](const QVariantList &) { return QVariant(1); });
    QFuture<QVariant> job = isle->spawnEval(u"local n = 0 for i = 1, 100 do n = n + f() end return n"_s);
    job.suspend();
    QTest::qWait(50);
    job.resume();
    QTRY_VERIFY_WITH_TIMEOUT(job.isFinished(), 5000);
    QCOMPARE(job.result(), QVariant(qlonglong(100)));
}

void tst_ContextCalls::childRequestFromContextFunction()
{
    // A GUI-thread function called by a script may itself eval on the same
    // isle: the child runs while its parent waits.
    auto isle = QIsle::spawn();
    QObject gui;
    isle->eval(u"base = 40"_s);
    isle->registerFunction(u"fromGui"_s, &gui, [&](const QVariantList &) {
        return isle->eval(u"return base + 2"_s);
    });
    QCOMPARE(isle->eval(u"return fromGui()"_s), QVariant(qlonglong(42)));
    // Also when this thread runs its event loop instead.
    QFuture<QVariant> job = isle->spawnEval(u"return fromGui()"_s);
    QTRY_VERIFY_WITH_TIMEOUT(job.isFinished(), 5000);
    QCOMPARE(job.result(), QVariant(qlonglong(42)));
}

void tst_ContextCalls::childSpawnFromContextFunction()
{
    auto isle = QIsle::spawn();
    QObject gui;
    QFuture<QVariant> child;
    isle->registerFunction(u"startChild"_s, &gui, [&](const QVariantList &) {
        child = isle->spawnEval(u"return 'child ran'"_s);
        return QVariant();
    });
    QCOMPARE(isle->eval(u"startChild() return 'parent done'"_s), QVariant(u"parent done"_s));
    QCOMPARE(QIsle::waitFor(child), QVariant(u"child ran"_s));
}

void tst_ContextCalls::nullContextIsLuaThread()
{
    QIsleOptions options;
    options.threadName = u"lua"_s;
    auto isle = QIsle::spawn({}, options);
    isle->registerFunction(u"where"_s, nullptr, [](const QVariantList &) { return QVariant(threadName()); });
    QCOMPARE(isle->eval(u"return where()"_s), QVariant(u"lua"_s));
}

void tst_ContextCalls::twoIslesCallEachOther()
{
    // Isle A's script calls an object of B's Lua thread while B's script,
    // blocked, calls an object of A's Lua thread: each blocked Lua thread
    // runs the calls posted to it.
    QIsleOptions a, b;
    a.threadName = u"A"_s;
    b.threadName = u"B"_s;
    auto isleA = QIsle::spawn({}, a);
    auto isleB = QIsle::spawn({}, b);
    QObject *onA = qvariant_cast<QObject *>(isleA->exec([](lua_State *) { return QVariant::fromValue(new QObject); }));
    QObject *onB = qvariant_cast<QObject *>(isleB->exec([](lua_State *) { return QVariant::fromValue(new QObject); }));
    isleA->registerFunction(u"onB"_s, onB, [](const QVariantList &) { return QVariant(threadName()); });
    isleB->registerFunction(u"onA"_s, onA, [](const QVariantList &) { return QVariant(threadName()); });
    QCOMPARE(isleA->eval(u"return onB()"_s), QVariant(u"B"_s));
    QCOMPARE(isleB->eval(u"return onA()"_s), QVariant(u"A"_s));
    auto jobA = isleA->spawnEval(u"local s = '' for i = 1, 20 do s = onB() end return s"_s);
    auto jobB = isleB->spawnEval(u"local s = '' for i = 1, 20 do s = onA() end return s"_s);
    QCOMPARE(QIsle::waitFor(jobA), QVariant(u"B"_s));
    QCOMPARE(QIsle::waitFor(jobB), QVariant(u"A"_s));
    isleA->exec([onA](lua_State *) { delete onA; return QVariant(); });
    isleB->exec([onB](lua_State *) { delete onB; return QVariant(); });
}

void tst_ContextCalls::manyThreadsCallIntoMainThread()
{
    // Callers on several threads, each eval calling into the main thread,
    // which alternates between its event loop and blocking calls of its own.
    auto isle = QIsle::spawn();
    QObject gui;
    std::atomic<int> calls{0};
    isle->registerFunction(u"gui.count"_s, &gui, [&](const QVariantList &) {
        Q_ASSERT(QThread::currentThread() == QCoreApplication::instance()->thread());
        return QVariant(++calls);
    });
    const int threads = 3, perThread = 30;
    std::atomic<int> finished{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t) {
        callers.emplace_back([&] {
            for (int i = 0; i < perThread; ++i)
                isle->eval(u"gui.count()"_s);
            ++finished;
        });
    }
    for (int i = 0; finished.load() < threads && i < 20000; ++i) {
        if (i % 2)
            isle->eval(u"gui.count()"_s);
        else
            QCoreApplication::processEvents(QEventLoop::AllEvents, 5);
    }
    for (auto &t : callers)
        t.join();
    QCOMPARE(finished.load(), threads);
    QVERIFY(calls.load() >= threads * perThread);
}

QTEST_GUILESS_MAIN(tst_ContextCalls)
#include "tst_contextcalls.moc"
