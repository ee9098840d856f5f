// Calls into other threads without deadlock: registerFunction with a context
// object runs in the context's thread; a thread blocked in one of QIsle's
// blocking calls (eval, call, exec, waitFor, shutdown, destruction) runs the
// calls scripts post to it, and nothing else (DESIGN, "Calls into other
// threads; QObjects in Lua").
#include <QIsle/QIsle>
#include <QIsle/QIsleLua>

#include <QtTest/QtTest>

#include <atomic>
#include <future>
#include <thread>

using namespace Qt::StringLiterals;

namespace {

// A thread with an event loop (for objects that live in neither the test's
// thread nor the Lua thread): a std::thread running a QEventLoop, so that

// Runs fn in object's thread and waits for it: a posted event whose
// destructor (run by Qt after delivery, in that thread) calls fn, and a
// std::promise -- hand-offs ThreadSanitizer sees, unlike a queued functor's
// or BlockingQueuedConnection's inside the uninstrumented Qt.
class RunEvent : public QEvent
{
public:
    explicit RunEvent(std::function<void()> fn) : QEvent(QEvent::Type(QEvent::User + 77)), m_fn(std::move(fn)) { }
    ~RunEvent() override { m_fn(); }

private:
    std::function<void()> m_fn;
};

template <typename F>
void runIn(QObject *object, F fn)
{
    std::promise<void> done;
    QCoreApplication::postEvent(object, new RunEvent([&done, fn] {
        fn();
        done.set_value();
    }));
    done.get_future().wait();
}

// ThreadSanitizer sees its start and its join.
class EventThread
{
public:
    explicit EventThread(const QString &name)
    {
        std::promise<std::pair<QThread *, QEventLoop *>> ready;
        auto started = ready.get_future();
        m_thread = std::thread([&ready, name] {
            QThread::currentThread()->setObjectName(name);
            QEventLoop loop; // makes the thread's event dispatcher
            ready.set_value({QThread::currentThread(), &loop});
            loop.exec();
        });
        std::tie(m_qthread, m_loop) = started.get();
    }
    ~EventThread()
    {
        QCoreApplication::postEvent(m_loop, new QEvent(QEvent::Quit));
        m_thread.join();
    }
    QThread *thread() const { return m_qthread; }

private:
    std::thread m_thread;
    QThread *m_qthread = nullptr;
    QEventLoop *m_loop = nullptr;
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
    void luaThreadFreeWhileWaiting();
    void blocksWhereLuaCannotYield();
    void childRequestWhereLuaCannotYield();
    void asyncContextFunction();
    void asyncContextFunctionFailures();
    void asyncContextFunctionCannotWaitHere();
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
        context->moveToThread(third.thread());
    } else {
        context = qvariant_cast<QObject *>(isle->exec([](lua_State *) { return QVariant::fromValue(new QObject); }));
    }
    isle->registerFunction(u"app.where"_s, context, [](const QVariantList &) { return QVariant(threadName()); });
    QCOMPARE(isle->eval(u"return app.where()"_s), QVariant(where));
    if (where == u"lua"_s)
        isle->exec([context](lua_State *) { delete context; return QVariant(); });
    else if (where == u"third"_s)
        runIn(context, [context] { delete context; });
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
    std::atomic<bool> continued{false};
    auto chained = QFuture<QVariant>(job).then(QtFuture::Launch::Sync, [&](QVariant) { continued = true; });
    QCOMPARE(QIsle::waitFor(job), QVariant(u"main"_s));
    QTRY_VERIFY_WITH_TIMEOUT(continued.load(), 5000);
    chained.waitForFinished();
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

void tst_ContextCalls::luaThreadFreeWhileWaiting()
{
    // A script waiting for the main thread yields: the Lua thread serves
    // other requests meanwhile (maxConcurrentRequests 0).
    QIsleOptions options;
    options.maxConcurrentRequests = 0;
    auto isle = QIsle::spawn({}, options);
    QObject gui;
    isle->registerFunction(u"gui.answer"_s, &gui, [](const QVariantList &) { return QVariant(u"late"_s); });
    QFuture<QVariant> waiting = isle->spawnEval(u"return gui.answer()"_s);
    QFuture<QVariant> other = isle->spawnEval(u"return 2"_s);
    // This thread runs no events: the first request keeps waiting...
    QElapsedTimer timer;
    timer.start();
    while (!other.isFinished() && timer.elapsed() < 5000)
        QThread::msleep(1);
    QVERIFY(other.isFinished());
    QCOMPARE(other.result(), QVariant(qlonglong(2)));
    QVERIFY(!waiting.isFinished());
    // ...until this thread answers.
    QTRY_VERIFY_WITH_TIMEOUT(waiting.isFinished(), 5000);
    QCOMPARE(waiting.result(), QVariant(u"late"_s));
}

void tst_ContextCalls::blocksWhereLuaCannotYield()
{
    // A table.sort comparator cannot yield: the call blocks the Lua thread
    // (stoppably), and works.
    auto isle = QIsle::spawn();
    QObject gui;
    std::atomic<int> calls{0};
    isle->registerFunction(u"gui.less"_s, &gui, [&](const QVariantList &args) {
        ++calls;
        return QVariant(args.value(0).toLongLong() < args.value(1).toLongLong());
    });
    QCOMPARE(isle->eval(u"local t = {5, 3, 9, 1} table.sort(t, function(a, b) return gui.less(a, b) end) "
                        "return table.concat(t, ',')"_s),
             QVariant(u"1,3,5,9"_s));
    QVERIFY(calls.load() > 0);
    // Canceled while blocked there: it stops.
    QFuture<QVariant> job = isle->spawnEval(u"local t = {} for i = 1, 200 do t[i] = i % 7 end "
                                            "table.sort(t, function(a, b) return gui.less(a, b) end)"_s);
    QThread::msleep(30);
    job.cancel();
    QElapsedTimer timer;
    timer.start();
    while (!job.isFinished() && timer.elapsed() < 5000)
        QThread::msleep(1);
    QVERIFY(job.isFinished() && job.isCanceled());
}

void tst_ContextCalls::childRequestWhereLuaCannotYield()
{
    auto isle = QIsle::spawn();
    QObject gui;
    isle->eval(u"base = 10"_s);
    isle->registerFunction(u"fromGui"_s, &gui, [&](const QVariantList &args) {
        return isle->eval(u"return base + %1"_s.arg(args.value(0).toLongLong()));
    });
    QCOMPARE(isle->eval(u"local t = {3, 1, 2} table.sort(t, function(a, b) return fromGui(a) < fromGui(b) end) "
                        "return table.concat(t, ',')"_s),
             QVariant(u"1,2,3"_s));
}

void tst_ContextCalls::asyncContextFunction()
{
    auto isle = QIsle::spawn();
    QObject gui;
    QThread *ranIn = nullptr;
    isle->registerAsyncFunction(u"gui.later"_s, &gui, [&](const QVariantList &args) {
        ranIn = QThread::currentThread();
        auto promise = std::make_shared<QPromise<QVariant>>();
        promise->start();
        const QVariant value = args.value(0).toLongLong() * 2;
        QTimer::singleShot(30, &gui, [promise, value] {
            promise->addResult(value);
            promise->finish();
        });
        return promise->future();
    });
    QFuture<QVariant> job = isle->spawnEval(u"return gui.later(21)"_s);
    QTRY_VERIFY_WITH_TIMEOUT(job.isFinished(), 5000);
    QCOMPARE(job.result(), QVariant(qlonglong(42)));
    QCOMPARE(ranIn, QThread::currentThread());
    // A finished future needs no wait, so it works anywhere (an exec closure).
    isle->registerAsyncFunction(u"gui.now"_s, &gui, [](const QVariantList &) {
        return QtFuture::makeReadyFuture(QVariant(u"now"_s));
    });
    QCOMPARE(isle->exec([](lua_State *L) {
        lua_getglobal(L, "gui");
        lua_getfield(L, -1, "now");
        lua_call(L, 0, 1);
        const QVariant v = QString::fromUtf8(lua_tostring(L, -1));
        lua_pop(L, 2);
        return v;
    }), QVariant(u"now"_s));
}

void tst_ContextCalls::asyncContextFunctionFailures()
{
    auto isle = QIsle::spawn();
    QObject gui;
    isle->registerAsyncFunction(u"gui.fails"_s, &gui, [](const QVariantList &) {
        QPromise<QVariant> promise;
        promise.start();
        promise.setException(QIsleError(QIsleError::Kind::Runtime, u"no network"_s));
        promise.finish();
        return promise.future();
    });
    isle->registerAsyncFunction(u"gui.dropped"_s, &gui, [](const QVariantList &) {
        QPromise<QVariant> promise;
        promise.start();
        promise.future().cancel();
        promise.finish();
        return promise.future();
    });
    isle->registerAsyncFunction(u"gui.throws"_s, &gui, [](const QVariantList &) -> QFuture<QVariant> {
        throw std::runtime_error("gui threw");
    });
    QCOMPARE(isle->eval(u"local ok, e = pcall(gui.fails) return e"_s), QVariant(u"no network"_s));
    QVERIFY(isle->eval(u"local ok, e = pcall(gui.dropped) return e"_s).toString().contains(u"canceled"_s));
    QCOMPARE(isle->eval(u"local ok, e = pcall(gui.throws) return e"_s), QVariant(u"gui threw"_s));
    try {
        isle->eval(u"gui.fails()"_s);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Callback);
    }
}

void tst_ContextCalls::asyncContextFunctionCannotWaitHere()
{
    auto isle = QIsle::spawn();
    QObject gui;
    auto promise = std::make_shared<QPromise<QVariant>>();
    isle->registerAsyncFunction(u"gui.pending"_s, &gui, [promise](const QVariantList &) {
        promise->start();
        return promise->future();
    });
    const QVariant message = isle->eval(
            u"local ok, e = pcall(table.sort, {2, 1}, function(a, b) gui.pending() return a < b end) return e"_s);
    QVERIFY2(message.toString().contains(u"cannot wait here"_s), qPrintable(message.toString()));
    QVERIFY(promise->future().isCanceled()); // the pending future was canceled first
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
