// Async: requests as coroutines, async host functions, isle.sleep that
// yields, maxConcurrentRequests, stopping and suspending a waiting request,
// shutdown's deadline for waits, child requests.
#include <QIsle/QIsle>
#include <QIsle/QIsleLua>

#include <QtCore/QElapsedTimer>
#include <QtCore/QMutex>
#include <QtCore/QPromise>
#include <QtTest/QtTest>

#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

// Futures the test resolves by hand: an async host function "gate" hands
// one out per call.
class Gates
{
public:
    QIsle::AsyncHostFunction function()
    {
        return [this](const QVariantList &args) {
            auto promise = std::make_shared<QPromise<QVariant>>();
            promise->start();
            QMutexLocker lock(&m_mutex);
            m_promises.push_back(promise);
            m_args.push_back(args);
            return promise->future();
        };
    }
    int count() const
    {
        QMutexLocker lock(&m_mutex);
        return int(m_promises.size());
    }
    std::shared_ptr<QPromise<QVariant>> at(int i) const
    {
        QMutexLocker lock(&m_mutex);
        return m_promises.at(std::size_t(i));
    }
    QVariantList argsAt(int i) const
    {
        QMutexLocker lock(&m_mutex);
        return m_args.at(std::size_t(i));
    }
    void resolve(int i, const QVariant &value)
    {
        auto p = at(i);
        p->addResult(value);
        p->finish();
    }
    QFuture<QVariant> futureAt(int i) const { return at(i)->future(); }

private:
    mutable QMutex m_mutex;
    std::vector<std::shared_ptr<QPromise<QVariant>>> m_promises;
    std::vector<QVariantList> m_args;
};

QFuture<QVariant> readyFuture(const QVariant &value)
{
    QPromise<QVariant> promise;
    promise.start();
    promise.addResult(value);
    promise.finish();
    return promise.future();
}

// A future that finishes with value after ms, from a thread of its own (a
// plain std::thread: no Qt events of its own, only the future's).
QFuture<QVariant> laterFuture(const QVariant &value, int ms)
{
    auto promise = std::make_shared<QPromise<QVariant>>();
    promise->start();
    QFuture<QVariant> future = promise->future();
    std::thread([promise, value, ms] {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        promise->addResult(value);
        promise->finish();
    }).detach();
    return future;
}

QIsleError errorOf(QFuture<QVariant> future)
{
    try {
        QIsle::waitFor(future);
    } catch (const QIsleError &e) {
        return e;
    }
    return QIsleError(QIsleError::Kind::Runtime, QStringLiteral("<no error>"));
}

QIsleOptions concurrent(int max)
{
    QIsleOptions options;
    options.maxConcurrentRequests = max;
    return options;
}

} // namespace

class tst_Async : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    // A request's top level is Lua's main chunk.
    void topLevelIsMainChunk_data();
    void topLevelIsMainChunk();
    void scriptCoroutinesStillWork();

    // Async host functions.
    void readyFutureNeedsNoWait();
    void readyFutureWorksAnywhere();
    void readyFutureOutcomes_data();
    void readyFutureOutcomes();
    void pendingFutureIsAwaited();
    void futureWithoutResultGivesNil();
    void failedFuture_data();
    void failedFuture();
    void canceledByProducer();
    void asyncFunctionThrows();
    void waitInsidePcall();
    void waitInsideXpcall();
    void waitInsideMetamethod();
    void waitInsideCall();
    void waitInsideCoroutines_data();
    void waitInsideCoroutines();
    void heldCoroutinesAreNormal();
    void stopAtWaitInsideCoroutine();
    void resultConversionError();
    void cannotWaitHere_data();
    void cannotWaitHere();
    void cannotWaitInInit();
    void manyWaitsInOneRequest();

    // isle.sleep.
    void sleepYields();
    void sleepBlocksWhereItCannotYield();
    void sleepZeroYields();

    // maxConcurrentRequests.
    void oneKeepsTheTurn();
    void limitIsObeyed();
    void heldRequestsKeepQueueOrder();
    void zeroMeansNoLimit();
    void interleaveOnlyAtWaits();
    void execWaitsForItsTurn();

    // Stopping a waiting request.
    void cancelAtWait_data();
    void cancelAtWait();
    void closeVariablesCloseAtStop();
    void pcallCannotCatchStopAtWait();
    void timeoutCountsWaiting();
    void destroyWhileWaiting();
    void suspendHoldsAfterWait();
    void suspendedWhileWaiting();
    void cancelWhileHeld();
    void canceledTrueInStoppedRequest();

    // shutdown().
    void shutdownRunsQueuedRequests();
    void shutdownCancelsLongWaits();
    void shutdownCancelsLateWaits();

    // Time slices.
    void timeSlice_data();
    void timeSlice();
    void timeSliceRunsOnInsideC();
    void timeSliceOffByDefault();

    // Child requests.
    void childRequestOfAwaitingParent();
    void blockingChildFromHostFunction();
};

void tst_Async::topLevelIsMainChunk_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QVariant>("expected");
    QTest::addRow("running is main") << "local co, main = coroutine.running() return main" << QVariant(true);
    QTest::addRow("running is a thread") << "return type((coroutine.running()))" << QVariant(QStringLiteral("thread"));
    QTest::addRow("running status") << "return coroutine.status((coroutine.running()))"
                                    << QVariant(QStringLiteral("running"));
    QTest::addRow("not yieldable") << "return coroutine.isyieldable()" << QVariant(false);
    QTest::addRow("not yieldable by thread")
            << "return coroutine.isyieldable((coroutine.running()))" << QVariant(false);
    QTest::addRow("bare yield")
            << "local ok, m = pcall(coroutine.yield, 1) return m" << QVariant(QStringLiteral("attempt to yield from outside a coroutine"));
    QTest::addRow("bare yield in pcall'd function")
            << "local ok, m = pcall(function() coroutine.yield() end) return m"
            << QVariant(QStringLiteral("attempt to yield from outside a coroutine"));
    QTest::addRow("close self") << "local ok, m = pcall(coroutine.close, (coroutine.running())) return m"
                                << QVariant(QStringLiteral("cannot close a running coroutine"));
    QTest::addRow("resume self") << "local ok, m = coroutine.resume((coroutine.running())) return m"
                                 << QVariant(QStringLiteral("cannot resume non-suspended coroutine"));
    QTest::addRow("inside a coroutine: not main")
            << "return select(2, coroutine.resume(coroutine.create(function() local _, m = coroutine.running() return m end)))"
            << QVariant(false);
    QTest::addRow("inside a coroutine: yieldable")
            << "return select(2, coroutine.resume(coroutine.create(function() return coroutine.isyieldable() end)))"
            << QVariant(true);
    QTest::addRow("request thread is normal from a coroutine")
            << "local me = coroutine.running() return select(2, coroutine.resume(coroutine.create(function() "
               "return coroutine.status(me) end)))"
            << QVariant(QStringLiteral("normal"));
}

void tst_Async::topLevelIsMainChunk()
{
    QFETCH(QString, chunk);
    QFETCH(QVariant, expected);
    for (int max : {1, 0}) {
        auto isle = QIsle::spawn({}, concurrent(max));
        QCOMPARE(isle->eval(chunk), expected);
        // Uncaught: the request fails with Lua's message.
        if (chunk.contains(QStringLiteral("bare yield"))) {
            const QIsleError e = errorOf(isle->spawnEval(QStringLiteral("coroutine.yield()")));
            QCOMPARE(e.message(), QStringLiteral("attempt to yield from outside a coroutine"));
        }
    }
}

void tst_Async::scriptCoroutinesStillWork()
{
    auto isle = QIsle::spawn();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)\n"
                     "local s = 0 for v in gen do s = s + v end return s")),
             QVariant(qlonglong(6)));
    QCOMPARE(isle->eval(QStringLiteral(
                     "local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)\n"
                     "local _, x = coroutine.resume(co, 1) local _, y = coroutine.resume(co, 10)\n"
                     "return x + y + (coroutine.status(co) == 'dead' and 100 or 0)")),
             QVariant(qlonglong(122)));
}

void tst_Async::readyFutureNeedsNoWait()
{
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("ready"), [](const QVariantList &args) {
        return readyFuture(args.value(0).toLongLong() * 2);
    });
    QCOMPARE(isle->eval(QStringLiteral("return ready(21)")), QVariant(qlonglong(42)));
    isle->registerAsyncFunction(QStringLiteral("app.ready"), [](const QVariantList &) { return readyFuture(QStringLiteral("x")); });
    QCOMPARE(isle->eval(QStringLiteral("return app.ready()")), QVariant(QStringLiteral("x")));
}

void tst_Async::readyFutureOutcomes_data()
{
    QTest::addColumn<int>("which");
    QTest::addColumn<QString>("expected");
    QTest::addRow("value") << 0 << QStringLiteral("true:42");
    QTest::addRow("no result: nil") << 1 << QStringLiteral("true:nil");
    QTest::addRow("failed") << 2 << QStringLiteral("false:disk on fire");
    QTest::addRow("canceled") << 3 << QStringLiteral("false:the awaited future was canceled");
    QTest::addRow("value, then canceled") << 4 << QStringLiteral("true:42");
    QTest::addRow("several results: the first") << 5 << QStringLiteral("true:42");
}

// A future finished before the script awaits it is read at once, without
// a wait: every outcome as a pending one would give.
void tst_Async::readyFutureOutcomes()
{
    QFETCH(int, which);
    QFETCH(QString, expected);
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("ready"), [which](const QVariantList &) {
        QPromise<QVariant> promise;
        promise.start();
        switch (which) {
        case 0: promise.addResult(QVariant(qlonglong(42))); break;
        case 1: break;
        case 2: promise.setException(QIsleError(QIsleError::Kind::Runtime, QStringLiteral("disk on fire"))); break;
        case 3: promise.future().cancel(); break;
        case 4: promise.addResult(QVariant(qlonglong(42))); break;
        case 5:
            promise.addResult(QVariant(qlonglong(42)));
            promise.addResult(QVariant(qlonglong(7)));
            break;
        }
        promise.finish();
        QFuture<QVariant> future = promise.future();
        if (which == 4)
            future.cancel(); // after it finished
        return future;
    });
    const QString text = isle->eval(QStringLiteral("local ok, v = pcall(ready)\n"
                                                   "if not ok then v = tostring(v):gsub('^.-: ', '') end\n"
                                                   "return tostring(ok) .. ':' .. tostring(v)"))
                                 .toString();
    QCOMPARE(text, expected);
}

void tst_Async::readyFutureWorksAnywhere()
{
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("ready"), [](const QVariantList &args) {
        return readyFuture(args.value(0));
    });
    QCOMPARE(isle->eval(QStringLiteral(
                     "local t = {3, 1, 2} table.sort(t, function(a, b) return ready(a) < ready(b) end)\n"
                     "return table.concat(t, ',')")),
             QVariant(QStringLiteral("1,2,3")));
    QCOMPARE(isle->eval(QStringLiteral("return (string.gsub('ab', '%w', function(c) return ready(c .. c) end))")),
             QVariant(QStringLiteral("aabb")));
    QCOMPARE(isle->exec([](lua_State *L) {
        luaL_dostring(L, "return ready(7)");
        const qlonglong v = lua_tointeger(L, -1);
        lua_pop(L, 1);
        return QVariant(v);
    }),
             QVariant(qlonglong(7)));
}

void tst_Async::pendingFutureIsAwaited()
{
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("later"), [](const QVariantList &args) {
        return laterFuture(args.value(0), 30);
    });
    QCOMPARE(isle->eval(QStringLiteral("local a = later(1) local b = later('two') return a .. b")),
             QVariant(QStringLiteral("1two")));
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("local v = gate('a', 2) return v + 1"));
    QTRY_COMPARE(gates.count(), 1);
    QCOMPARE(gates.argsAt(0), (QVariantList{QStringLiteral("a"), qlonglong(2)}));
    QThread::msleep(20);
    QVERIFY(!f.isFinished());
    gates.resolve(0, 41);
    QCOMPARE(QIsle::waitFor(f), QVariant(qlonglong(42)));
}

void tst_Async::futureWithoutResultGivesNil()
{
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("local v = gate() return v == nil"));
    QTRY_COMPARE(gates.count(), 1);
    gates.at(0)->finish();
    QCOMPARE(QIsle::waitFor(f), QVariant(true));
}

void tst_Async::failedFuture_data()
{
    QTest::addColumn<int>("which");
    QTest::addRow("QIsleError") << 0;
    QTest::addRow("QException subclass via QUnhandledException") << 1;
}

void tst_Async::failedFuture()
{
    QFETCH(int, which);
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    auto fail = [&](int i) {
        auto p = gates.at(i);
        if (which == 0)
            p->setException(QIsleError(QIsleError::Kind::Runtime, QStringLiteral("disk on fire")));
        else
            p->setException(std::make_exception_ptr(QUnhandledException(
                    std::make_exception_ptr(std::runtime_error("disk on fire")))));
        p->finish();
    };
    // Catchable.
    QFuture<QVariant> caught = isle->spawnEval(QStringLiteral("local ok, m = pcall(gate) return tostring(ok) .. ':' .. m"));
    QTRY_COMPARE(gates.count(), 1);
    fail(0);
    const QString text = QIsle::waitFor(caught).toString();
    QVERIFY2(text.startsWith(QStringLiteral("false:")) && (which != 0 || text.contains(QStringLiteral("disk on fire"))),
             qPrintable(text));
    // Uncaught: Callback.
    QFuture<QVariant> uncaught = isle->spawnEval(QStringLiteral("gate() return 1"));
    QTRY_COMPARE(gates.count(), 2);
    fail(1);
    const QIsleError e = errorOf(uncaught);
    QCOMPARE(e.kind(), QIsleError::Kind::Callback);
    if (which == 0)
        QVERIFY2(e.message().contains(QStringLiteral("disk on fire")), qPrintable(e.message()));
}

void tst_Async::canceledByProducer()
{
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> caught = isle->spawnEval(QStringLiteral("local ok, m = pcall(gate) return m"));
    QTRY_COMPARE(gates.count(), 1);
    gates.futureAt(0).cancel();
    gates.at(0)->finish();
    const QString message = QIsle::waitFor(caught).toString();
    QVERIFY2(message.contains(QStringLiteral("canceled")), qPrintable(message));
    QVERIFY(!caught.isCanceled()); // the request itself completed

    QFuture<QVariant> uncaught = isle->spawnEval(QStringLiteral("gate() return 1"));
    QTRY_COMPARE(gates.count(), 2);
    gates.futureAt(1).cancel(); // canceled, never finished by its producer
    const QIsleError e = errorOf(uncaught);
    QCOMPARE(e.kind(), QIsleError::Kind::Callback);
    QVERIFY2(e.message().contains(QStringLiteral("canceled")), qPrintable(e.message()));

    // A default-constructed future counts as canceled.
    isle->registerAsyncFunction(QStringLiteral("none"), [](const QVariantList &) { return QFuture<QVariant>(); });
    QVERIFY(isle->eval(QStringLiteral("return select(2, pcall(none))")).toString().contains(QStringLiteral("canceled")));
}

void tst_Async::asyncFunctionThrows()
{
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("boom"), [](const QVariantList &) -> QFuture<QVariant> {
        throw std::runtime_error("no future today");
    });
    QCOMPARE(isle->eval(QStringLiteral("local ok, m = pcall(boom) return m")),
             QVariant(QStringLiteral("no future today")));
    const QIsleError e = errorOf(isle->spawnEval(QStringLiteral("boom()")));
    QCOMPARE(e.kind(), QIsleError::Kind::Callback);
    QCOMPARE(e.message(), QStringLiteral("no future today"));
}

void tst_Async::waitInsidePcall()
{
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("later"), [](const QVariantList &args) {
        return laterFuture(args.value(0), 20);
    });
    QCOMPARE(isle->eval(QStringLiteral(
                     "local ok, v = pcall(function() return later(5) + later(6) end)\n"
                     "local ok2, e = pcall(function() later(1) error('after wait') end)\n"
                     "return tostring(ok) .. v .. tostring(ok2) .. e")),
             QVariant(QStringLiteral("true11falseeval:2: after wait")));
    // Nested pcalls, a wait at each level.
    QCOMPARE(isle->eval(QStringLiteral(
                     "return select(2, pcall(function() local a = later(1) "
                     "return a + select(2, pcall(function() return later(2) end)) end))")),
             QVariant(qlonglong(3)));
}

void tst_Async::waitInsideXpcall()
{
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("later"), [](const QVariantList &args) {
        return laterFuture(args.value(0), 20);
    });
    QCOMPARE(isle->eval(QStringLiteral(
                     "local ok, v = xpcall(function() local x = later(2) error('x' .. x, 0) end,\n"
                     "                     function(m) return 'handled ' .. m end)\n"
                     "return v")),
             QVariant(QStringLiteral("handled x2")));
}

void tst_Async::waitInsideMetamethod()
{
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("later"), [](const QVariantList &args) {
        return laterFuture(args.value(0), 20);
    });
    QCOMPARE(isle->eval(QStringLiteral(
                     "local t = setmetatable({}, {__index = function(_, k) return later(k .. '!') end,\n"
                     "                            __add = function(a, b) return later(40) + b end,\n"
                     "                            __call = function(self, x) return later(x) end})\n"
                     "return t.hello .. (t + 2) .. t('z')")),
             QVariant(QStringLiteral("hello!42z")));
}

void tst_Async::waitInsideCall()
{
    auto isle = QIsle::spawn([](lua_State *L) {
        luaL_dostring(L, "function fetchTwice(x) return later(x) .. later(x) end");
    });
    isle->registerAsyncFunction(QStringLiteral("later"), [](const QVariantList &args) {
        return laterFuture(args.value(0), 20);
    });
    QCOMPARE(isle->call(QStringLiteral("fetchTwice"), {QStringLiteral("ab")}), QVariant(QStringLiteral("abab")));
}

void tst_Async::waitInsideCoroutines_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QVariant>("expected");
    QTest::addRow("resume") << "local co = coroutine.create(function(a) return later(a) + 1 end)\n"
                               "return select(2, coroutine.resume(co, 41))"
                            << QVariant(qlonglong(42));
    QTest::addRow("wrap") << "return coroutine.wrap(function(a) return later(a) .. '!' end)('x')"
                          << QVariant(QStringLiteral("x!"));
    QTest::addRow("generator that waits")
            << "local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(later(i)) end end)\n"
               "local s = 0 for v in gen do s = s + v end return s"
            << QVariant(qlonglong(6));
    QTest::addRow("script yields and waits mixed")
            << "local co = coroutine.create(function(a)\n"
               "  local b = coroutine.yield(later(a))\n"
               "  isle.sleep(1)\n"
               "  return later(b) * 2 end)\n"
               "local _, x = coroutine.resume(co, 3)\n"
               "local _, y = coroutine.resume(co, x + 1)\n"
               "return x * 100 + y + (coroutine.status(co) == 'dead' and 1000 or 0)"
            << QVariant(qlonglong(1308));
    QTest::addRow("nested coroutines")
            << "local inner = coroutine.wrap(function() return later('in') end)\n"
               "local outer = coroutine.create(function() return inner() .. later('out') end)\n"
               "return select(2, coroutine.resume(outer))"
            << QVariant(QStringLiteral("inout"));
    QTest::addRow("pcall inside a coroutine")
            << "return coroutine.wrap(function() local ok, v = pcall(later, 'p') return v end)()"
            << QVariant(QStringLiteral("p"));
    QTest::addRow("error after a wait in a coroutine")
            << "local ok, m = coroutine.resume(coroutine.create(function() later(1) error('late', 0) end))\n"
               "return tostring(ok) .. m"
            << QVariant(QStringLiteral("falselate"));
    QTest::addRow("status while running after a wait")
            << "local co co = coroutine.create(function() later(1) return coroutine.status(co) end)\n"
               "return select(2, coroutine.resume(co))"
            << QVariant(QStringLiteral("running"));
    QTest::addRow("isyieldable after a wait")
            << "return coroutine.wrap(function() later(1) return coroutine.isyieldable() end)()" << QVariant(true);
}

void tst_Async::waitInsideCoroutines()
{
    QFETCH(QString, chunk);
    QFETCH(QVariant, expected);
    for (int max : {1, 0}) {
        auto isle = QIsle::spawn({}, concurrent(max));
        isle->registerAsyncFunction(QStringLiteral("later"), [](const QVariantList &args) {
            return laterFuture(args.value(0), 10);
        });
        QCOMPARE(isle->eval(chunk), expected);
    }
}

void tst_Async::heldCoroutinesAreNormal()
{
    auto isle = QIsle::spawn({}, concurrent(0));
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> waiting = isle->spawnEval(QStringLiteral(
            "requestThread = coroutine.running()\n"
            "waitingCo = coroutine.create(function() return gate() end)\n"
            "return select(2, coroutine.resume(waitingCo))"));
    QTRY_COMPARE(gates.count(), 1);
    // Seen from another request: both "normal", neither resumable nor closable.
    QCOMPARE(isle->eval(QStringLiteral("return coroutine.status(waitingCo) .. ' ' .. coroutine.status(requestThread)")),
             QVariant(QStringLiteral("normal normal")));
    QCOMPARE(isle->eval(QStringLiteral("return select(2, coroutine.resume(waitingCo))")),
             QVariant(QStringLiteral("cannot resume non-suspended coroutine")));
    QCOMPARE(isle->eval(QStringLiteral("return select(2, coroutine.resume(requestThread))")),
             QVariant(QStringLiteral("cannot resume non-suspended coroutine")));
    QVERIFY(isle->eval(QStringLiteral("return select(2, pcall(coroutine.close, waitingCo))"))
                    .toString()
                    .endsWith(QStringLiteral("cannot close a normal coroutine")));
    QCOMPARE(isle->eval(QStringLiteral("return select(2, pcall(coroutine.wrap(function() coroutine.close(requestThread) end)))"))
                     .toString()
                     .contains(QStringLiteral("cannot close a normal coroutine")),
             true);
    QCOMPARE(isle->eval(QStringLiteral("return coroutine.isyieldable(requestThread)")), QVariant(false));
    gates.resolve(0, QStringLiteral("done"));
    QCOMPARE(QIsle::waitFor(waiting), QVariant(QStringLiteral("done")));
    QCOMPARE(isle->eval(QStringLiteral("return coroutine.status(waitingCo)")), QVariant(QStringLiteral("dead")));
}

void tst_Async::stopAtWaitInsideCoroutine()
{
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "closed = {}\n"
            "local function guard(name) return setmetatable({}, {__close = function() "
            "closed[#closed + 1] = name end}) end\n"
            "local outer <close> = guard('request')\n"
            "local inner = coroutine.wrap(function() local g <close> = guard('wrapped') gate() end)\n"
            "local co = coroutine.create(function() local g <close> = guard('resumed') inner() end)\n"
            "local ok = coroutine.resume(co)\n"
            "closed[#closed + 1] = 'not reached ' .. tostring(ok)"));
    QTRY_COMPARE(gates.count(), 1);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QVERIFY(gates.futureAt(0).isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return table.concat(closed, ',')")),
             QVariant(QStringLiteral("wrapped,resumed,request")));
}

void tst_Async::resultConversionError()
{
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("later"), [](const QVariantList &) {
        return laterFuture(QVariant::fromValue(QDateTime::currentDateTime()), 10);
    });
    const QIsleError e = errorOf(isle->spawnEval(QStringLiteral("return later()")));
    QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
    QVERIFY2(e.message().contains(QStringLiteral("QDateTime")), qPrintable(e.message()));
}

void tst_Async::cannotWaitHere_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addRow("table.sort comparator")
            << "local t = {2, 1} table.sort(t, function(a, b) gate() return a < b end)";
    QTest::addRow("string.gsub callback") << "string.gsub('a', '%w', function(c) gate() end)";
    QTest::addRow("__gc") << "setmetatable({}, {__gc = function() local ok, m = pcall(gate) gcError = m end}) "
                             "collectgarbage() collectgarbage() error(gcError or 'finalizer did not run', 0)";
    QTest::addRow("coroutine resumed from a comparator")
            << "local t = {2, 1} table.sort(t, function(a, b)\n"
               "  local co = coroutine.wrap(function() gate() end) co() return a < b end)";
    QTest::addRow("load reader") << "local f, m = load(function() gate() end) error(m, 0)";
    QTest::addRow("xpcall message handler")
            << "local _, m = xpcall(error, function() local _, m = pcall(gate) return m end) error(m, 0)";
}

void tst_Async::cannotWaitHere()
{
    QFETCH(QString, chunk);
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    const QIsleError e = errorOf(isle->spawnEval(chunk));
    QVERIFY2(e.message().contains(QStringLiteral("cannot wait here")), qPrintable(e.message()));
    // The async function was called; its pending future was canceled.
    QVERIFY(gates.count() >= 1);
    QVERIFY(gates.futureAt(0).isCanceled());
    // Nothing hangs: the VM serves the next request.
    QCOMPARE(isle->eval(QStringLiteral("return 1")), QVariant(qlonglong(1)));
}

void tst_Async::cannotWaitInInit()
{
    // An exec closure, a nested blocking call, and init.
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    const QVariant fromExec = isle->exec([](lua_State *L) {
        lua_getglobal(L, "pcall");
        lua_getglobal(L, "gate");
        lua_call(L, 1, 2);
        const QVariant message = QString::fromUtf8(lua_tostring(L, -1));
        lua_pop(L, 2);
        return message;
    });
    QVERIFY2(fromExec.toString().contains(QStringLiteral("cannot wait here")), qPrintable(fromExec.toString()));
    QIsle *raw = isle.get();
    isle->registerFunction(QStringLiteral("nested"), [raw](const QVariantList &) {
        return raw->eval(QStringLiteral("local ok, m = pcall(gate) return m"));
    });
    const QString nested = isle->eval(QStringLiteral("return nested()")).toString();
    QVERIFY2(nested.contains(QStringLiteral("cannot wait here")), qPrintable(nested));
    QCOMPARE(gates.count(), 2);
    QVERIFY(gates.futureAt(0).isCanceled());
    QVERIFY(gates.futureAt(1).isCanceled());

    // init: isle.sleep blocks there (no async function exists yet).
    QElapsedTimer timer;
    timer.start();
    auto slept = QIsle::spawn([](lua_State *L) {
        if (luaL_dostring(L, "isle.sleep(30) initDone = true") != LUA_OK)
            lua_error(L);
    });
    QVERIFY(timer.elapsed() >= 25);
    QCOMPARE(slept->eval(QStringLiteral("return initDone")), QVariant(true));
}

void tst_Async::manyWaitsInOneRequest()
{
    auto isle = QIsle::spawn();
    isle->registerAsyncFunction(QStringLiteral("soon"), [](const QVariantList &args) {
        return laterFuture(args.value(0), 0);
    });
    QCOMPARE(isle->eval(QStringLiteral("local s = 0 for i = 1, 300 do s = s + soon(i) end return s")),
             QVariant(qlonglong(300 * 301 / 2)));
}

void tst_Async::sleepYields()
{
    auto isle = QIsle::spawn({}, concurrent(0));
    QElapsedTimer timer;
    timer.start();
    QList<QFuture<QVariant>> futures;
    for (int i = 0; i < 20; ++i)
        futures << isle->spawnEval(QStringLiteral("isle.sleep(200) return %1").arg(i));
    for (int i = 0; i < futures.size(); ++i)
        QCOMPARE(QIsle::waitFor(futures.at(i)), QVariant(qlonglong(i)));
    // 20 sleeps of 200 ms side by side, not one after another (4 s).
    QVERIFY2(timer.elapsed() < 1500, qPrintable(QString::number(timer.elapsed())));
    QVERIFY(timer.elapsed() >= 195);
}

void tst_Async::sleepBlocksWhereItCannotYield()
{
    auto isle = QIsle::spawn({}, concurrent(0));
    QElapsedTimer timer;
    timer.start();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local t = {2, 1} table.sort(t, function(a, b) isle.sleep(20) return a < b end) return t[1]")),
             QVariant(qlonglong(1)));
    QVERIFY(timer.elapsed() >= 20);
    // Still stoppable.
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "local t = {2, 1} table.sort(t, function(a, b) isle.sleep(1e9) return a < b end)"));
    QThread::msleep(30);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
}

void tst_Async::sleepZeroYields()
{
    auto isle = QIsle::spawn({}, concurrent(0));
    QCOMPARE(isle->eval(QStringLiteral("isle.sleep(0) isle.sleep(-5) isle.sleep(0/0) return 1")), QVariant(qlonglong(1)));
    // Two requests alternating through sleep(0).
    isle->eval(QStringLiteral("trace = {}"));
    // Both queued before either starts (a slow machine could otherwise run
    // all of a before b is submitted): the Lua thread waits in an exec.
    auto gate = std::make_shared<QSemaphore>();
    (void)isle->spawnExec([gate](lua_State *) {
        gate->acquire();
        return QVariant();
    });
    QFuture<QVariant> a = isle->spawnEval(QStringLiteral("for i = 1, 3 do trace[#trace + 1] = 'a' isle.sleep(0) end"));
    QFuture<QVariant> b = isle->spawnEval(QStringLiteral("for i = 1, 3 do trace[#trace + 1] = 'b' isle.sleep(0) end"));
    gate->release();
    QIsle::waitFor(a);
    QIsle::waitFor(b);
    QCOMPARE(isle->eval(QStringLiteral("return table.concat(trace)")), QVariant(QStringLiteral("ababab")));
}

void tst_Async::oneKeepsTheTurn()
{
    auto isle = QIsle::spawn(); // maxConcurrentRequests = 1
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    isle->eval(QStringLiteral("order = ''"));
    QFuture<QVariant> first = isle->spawnEval(QStringLiteral("order = order .. 'a' gate() order = order .. 'b'"));
    QFuture<QVariant> second = isle->spawnEval(QStringLiteral("order = order .. 'c'"));
    QTRY_COMPARE(gates.count(), 1);
    QThread::msleep(30);
    QVERIFY(!second.isFinished()); // the waiting request keeps the VM's turn
    gates.resolve(0, {});
    QIsle::waitFor(first);
    QIsle::waitFor(second);
    QCOMPARE(isle->eval(QStringLiteral("return order")), QVariant(QStringLiteral("abc")));
}

void tst_Async::limitIsObeyed()
{
    auto isle = QIsle::spawn({}, concurrent(2));
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QList<QFuture<QVariant>> futures;
    for (int i = 0; i < 4; ++i)
        futures << isle->spawnEval(QStringLiteral("return gate(%1)").arg(i));
    QTRY_COMPARE(gates.count(), 2);
    QThread::msleep(30);
    QCOMPARE(gates.count(), 2); // two in progress, two queued
    gates.resolve(1, QStringLiteral("one"));
    QTRY_COMPARE(gates.count(), 3);
    QCOMPARE(gates.argsAt(2).value(0), QVariant(qlonglong(2))); // queue order
    gates.resolve(0, QStringLiteral("zero"));
    QTRY_COMPARE(gates.count(), 4);
    gates.resolve(2, QStringLiteral("two"));
    gates.resolve(3, QStringLiteral("three"));
    QCOMPARE(QIsle::waitFor(futures.at(0)), QVariant(QStringLiteral("zero")));
    QCOMPARE(QIsle::waitFor(futures.at(3)), QVariant(QStringLiteral("three")));
}

// Requests held behind a full limit start in queue order, also when more
// arrive while part of the held ones has started (the held storage is then
// compacted) and when a flood of them drains.
void tst_Async::heldRequestsKeepQueueOrder()
{
    auto isle = QIsle::spawn({}, concurrent(1));
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    isle->eval(QStringLiteral("order = {}"));
    const auto submit = [&](int n, bool gated) {
        return isle->spawnEval(QStringLiteral("%1order[#order + 1] = %2")
                                       .arg(gated ? QStringLiteral("gate() ") : QString())
                                       .arg(n));
    };
    QList<QFuture<QVariant>> futures;
    futures << submit(0, true); // takes the turn, waits
    QTRY_COMPARE(gates.count(), 1);
    for (int n = 1; n <= 10; ++n) // held, one batch
        futures << submit(n, n == 6);
    QThread::msleep(20);
    gates.resolve(0, {});        // 1-5 run, 6 waits: half of the held started
    QTRY_COMPARE(gates.count(), 2);
    for (int n = 11; n <= 3000; ++n) // held behind 7-10
        futures << submit(n, false);
    QThread::msleep(20);
    gates.resolve(1, {});
    for (const QFuture<QVariant> &f : futures)
        QIsle::waitFor(f);
    QCOMPARE(isle->eval(QStringLiteral(
                     "for i = 0, 3000 do if order[i + 1] ~= i then return 'at ' .. i .. ': ' .. tostring(order[i + 1]) end end "
                     "return #order")),
             QVariant(qlonglong(3001)));
    QCOMPARE(isle->eval(QStringLiteral("return 1 + 1")), QVariant(qlonglong(2)));
}

void tst_Async::zeroMeansNoLimit()
{
    auto isle = QIsle::spawn({}, concurrent(0));
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QList<QFuture<QVariant>> futures;
    for (int i = 0; i < 50; ++i)
        futures << isle->spawnEval(QStringLiteral("return gate() + %1").arg(i));
    QTRY_COMPARE(gates.count(), 50);
    for (int i = 49; i >= 0; --i)
        gates.resolve(i, 100);
    for (int i = 0; i < 50; ++i)
        QCOMPARE(QIsle::waitFor(futures.at(i)), QVariant(qlonglong(100 + i)));
}

void tst_Async::interleaveOnlyAtWaits()
{
    auto isle = QIsle::spawn({}, concurrent(0));
    isle->eval(QStringLiteral("trace = {}"));
    QFuture<QVariant> a = isle->spawnEval(QStringLiteral(
            "trace[#trace + 1] = 'a1' for i = 1, 1e6 do end trace[#trace + 1] = 'a2' isle.sleep(30) trace[#trace + 1] = 'a3'"));
    QFuture<QVariant> b = isle->spawnEval(QStringLiteral("trace[#trace + 1] = 'b1' trace[#trace + 1] = 'b2'"));
    QIsle::waitFor(a);
    QIsle::waitFor(b);
    QCOMPARE(isle->eval(QStringLiteral("return table.concat(trace, ' ')")), QVariant(QStringLiteral("a1 a2 b1 b2 a3")));
}

void tst_Async::execWaitsForItsTurn()
{
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> waiting = isle->spawnEval(QStringLiteral("gate() return 1"));
    QTRY_COMPARE(gates.count(), 1);
    QFuture<QVariant> exec = isle->spawnExec([](lua_State *) { return QVariant(2); });
    QThread::msleep(20);
    QVERIFY(!exec.isFinished());
    gates.resolve(0, {});
    QCOMPARE(QIsle::waitFor(exec), QVariant(2));
    QCOMPARE(QIsle::waitFor(waiting), QVariant(qlonglong(1)));
}

void tst_Async::cancelAtWait_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<int>("max");
    QTest::addRow("future") << "gate()" << 1;
    QTest::addRow("future, no limit") << "gate()" << 0;
    QTest::addRow("sleep") << "isle.sleep(1e9)" << 1;
    QTest::addRow("future in pcall") << "pcall(gate)" << 1;
    QTest::addRow("future in metamethod") << "local t = setmetatable({}, {__index = function() return gate() end}) local _ = t.x" << 1;
}

void tst_Async::cancelAtWait()
{
    QFETCH(QString, chunk);
    QFETCH(int, max);
    auto isle = QIsle::spawn({}, concurrent(max));
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    std::atomic<bool> waiting{false};
    isle->registerFunction(QStringLiteral("waiting"), [&](const QVariantList &) {
        waiting = true;
        return QVariant();
    });
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("waiting() ") + chunk + QStringLiteral(" reached = true"));
    QTRY_VERIFY(waiting.load());
    QThread::msleep(20);
    QVERIFY(!f.isFinished());
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(errorOf(f).kind(), QIsleError::Kind::Cancelled);
    if (gates.count() > 0) {
        QTRY_VERIFY(gates.futureAt(0).isCanceled()); // the awaited future is canceled
    }
    QCOMPARE(isle->eval(QStringLiteral("return reached")), QVariant());
    QCOMPARE(isle->eval(QStringLiteral("return 1 + 1")), QVariant(qlonglong(2)));
}

void tst_Async::closeVariablesCloseAtStop()
{
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "closed = {}\n"
            "local function guard(name) return setmetatable({}, {__close = function(_, err) "
            "closed[#closed + 1] = name .. ':' .. tostring(isle.canceled()) end}) end\n"
            "local outer <close> = guard('outer')\n"
            "pcall(function() local inner <close> = guard('inner') gate() end)\n"
            "closed[#closed + 1] = 'not reached'"));
    QTRY_COMPARE(gates.count(), 1);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return table.concat(closed, ',')")),
             QVariant(QStringLiteral("inner:true,outer:true")));
}

void tst_Async::pcallCannotCatchStopAtWait()
{
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "caught = 0 for i = 1, 3 do local ok = pcall(gate) if not ok then caught = caught + 1 end end "
            "return caught"));
    QTRY_COMPARE(gates.count(), 1);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(gates.count(), 1); // no second wait started
    QCOMPARE(isle->eval(QStringLiteral("return caught")), QVariant(qlonglong(0)));
}

void tst_Async::timeoutCountsWaiting()
{
    QIsleOptions options;
    options.timeout = std::chrono::milliseconds(150);
    auto isle = QIsle::spawn({}, options);
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QElapsedTimer timer;
    timer.start();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("gate()"));
    const QIsleError e = errorOf(f);
    QCOMPARE(e.kind(), QIsleError::Kind::Timeout);
    QVERIFY(timer.elapsed() >= 140);
    QVERIFY2(timer.elapsed() < 3000, qPrintable(QString::number(timer.elapsed())));
    QVERIFY(gates.futureAt(0).isCanceled());
    // Sleeping counts too, and a per-request timeout works the same.
    QIsleRequestOptions requestOptions;
    requestOptions.timeout = std::chrono::milliseconds(50);
    QCOMPARE(errorOf(isle->spawnEval(QStringLiteral("isle.sleep(10000)"), requestOptions)).kind(),
             QIsleError::Kind::Timeout);
    // Partly running, partly waiting.
    QCOMPARE(errorOf(isle->spawnEval(QStringLiteral("for i = 1, 1000 do isle.sleep(1) end"), requestOptions)).kind(),
             QIsleError::Kind::Timeout);
}

void tst_Async::destroyWhileWaiting()
{
    Gates gates;
    QList<QFuture<QVariant>> futures;
    QElapsedTimer timer;
    {
        auto isle = QIsle::spawn({}, concurrent(0));
        isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
        for (int i = 0; i < 5; ++i)
            futures << isle->spawnEval(QStringLiteral("gate()"));
        futures << isle->spawnEval(QStringLiteral("isle.sleep(1e9)"));
        QTRY_COMPARE(gates.count(), 5);
        QThread::msleep(20);
        timer.start();
    }
    QVERIFY2(timer.elapsed() < 1000, qPrintable(QString::number(timer.elapsed())));
    for (const auto &f : futures) {
        QVERIFY(f.isFinished());
        QVERIFY(f.isCanceled());
    }
    for (int i = 0; i < 5; ++i)
        QVERIFY(gates.futureAt(i).isCanceled());
}

void tst_Async::suspendHoldsAfterWait()
{
    auto isle = QIsle::spawn({}, concurrent(0));
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("after = false local v = gate() after = true return v"));
    QTRY_COMPARE(gates.count(), 1);
    f.suspend();
    gates.resolve(0, 7);
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 5000);
    // Other requests go on meanwhile.
    QCOMPARE(isle->eval(QStringLiteral("return after")), QVariant(false));
    f.resume();
    QCOMPARE(QIsle::waitFor(f), QVariant(qlonglong(7)));
    QCOMPARE(isle->eval(QStringLiteral("return after")), QVariant(true));
}

void tst_Async::suspendedWhileWaiting()
{
    // A waiting request does nothing: suspend() takes effect at once, and
    // resume() before the wait ends lets it go on when it ends.
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("return gate()"));
    QTRY_COMPARE(gates.count(), 1);
    f.suspend();
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 5000);
    f.resume();
    QTRY_VERIFY(!f.isSuspended());
    gates.resolve(0, 3);
    QCOMPARE(QIsle::waitFor(f), QVariant(qlonglong(3)));
}

void tst_Async::cancelWhileHeld()
{
    auto isle = QIsle::spawn({}, concurrent(0));
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("local v = gate() reachedHeld = true return v"));
    QTRY_COMPARE(gates.count(), 1);
    f.suspend();
    gates.resolve(0, 7);
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 5000);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return reachedHeld")), QVariant());
}

void tst_Async::canceledTrueInStoppedRequest()
{
    auto isle = QIsle::spawn();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "local before = isle.canceled()\n"
            "local g <close> = setmetatable({}, {__close = function() seen = tostring(before) .. ' ' .. tostring(isle.canceled()) end})\n"
            "gate()"));
    QTRY_COMPARE(gates.count(), 1);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QCOMPARE(isle->eval(QStringLiteral("return seen")), QVariant(QStringLiteral("false true")));
}

void tst_Async::shutdownRunsQueuedRequests()
{
    auto isle = QIsle::spawn({}, concurrent(0));
    isle->registerAsyncFunction(QStringLiteral("later"), [](const QVariantList &args) {
        return laterFuture(args.value(0), 50);
    });
    QList<QFuture<QVariant>> futures;
    for (int i = 0; i < 5; ++i)
        futures << isle->spawnEval(QStringLiteral("isle.sleep(30) return later(%1)").arg(i));
    isle->shutdown();
    for (int i = 0; i < 5; ++i)
        QCOMPARE(QIsle::waitFor(futures.at(i)), QVariant(qlonglong(i)));
    QVERIFY(!isle->isAlive());
}

void tst_Async::shutdownCancelsLongWaits()
{
    QIsleOptions options;
    options.shutdownTimeout = std::chrono::milliseconds(200);
    options.maxConcurrentRequests = 0;
    auto isle = QIsle::spawn({}, options);
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> stuck = isle->spawnEval(QStringLiteral("gate()"));
    QFuture<QVariant> sleeper = isle->spawnEval(QStringLiteral("isle.sleep(1e9)"));
    QFuture<QVariant> quick = isle->spawnEval(QStringLiteral("isle.sleep(20) return 5"));
    QTRY_COMPARE(gates.count(), 1);
    QElapsedTimer timer;
    timer.start();
    isle->shutdown();
    QVERIFY2(timer.elapsed() >= 180 && timer.elapsed() < 3000, qPrintable(QString::number(timer.elapsed())));
    QCOMPARE(QIsle::waitFor(quick), QVariant(qlonglong(5)));
    QVERIFY(stuck.isFinished() && stuck.isCanceled());
    QVERIFY(sleeper.isFinished() && sleeper.isCanceled());
    QVERIFY(gates.futureAt(0).isCanceled());
}

void tst_Async::shutdownCancelsLateWaits()
{
    // With one request at a time, the queued ones start after the deadline:
    // a request that starts a wait then is canceled at once.
    QIsleOptions options;
    options.shutdownTimeout = std::chrono::milliseconds(100);
    auto isle = QIsle::spawn({}, options);
    QFuture<QVariant> first = isle->spawnEval(QStringLiteral("for i = 1, 20 do isle.sleep(10) end return 1"));
    QFuture<QVariant> second = isle->spawnEval(QStringLiteral("noWait = true isle.sleep(10) return 2"));
    isle->shutdown();
    QVERIFY(first.isFinished() && second.isFinished());
    QVERIFY(first.isCanceled());
    QVERIFY(second.isCanceled());
}

void tst_Async::timeSlice_data()
{
    QTest::addColumn<QString>("spinner");
    QTest::addRow("request") << "local n = 0 while not flag do n = n + 1 end return 'spun'";
    QTest::addRow("inside pcall") << "return select(2, pcall(function() while not flag do end return 'spun' end))";
    QTest::addRow("inside a script coroutine")
            << "return coroutine.wrap(function() while not flag do end return 'spun' end)()";
    QTest::addRow("two tasks") << "local t = isle.spawn(function() while not flag do end end)\n"
                                  "local u = isle.spawn(function() while not flag do end end)\n"
                                  "t:join() u:join() return 'spun'";
}

void tst_Async::timeSlice()
{
    // Without slices the spinner would hold the Lua thread for good.
    QFETCH(QString, spinner);
    QIsleOptions options;
    options.maxConcurrentRequests = 0;
    options.timeSlice = std::chrono::milliseconds(5);
    auto isle = QIsle::spawn({}, options);
    isle->eval(QStringLiteral("flag = false"));
    QFuture<QVariant> a = isle->spawnEval(spinner);
    QFuture<QVariant> b = isle->spawnEval(QStringLiteral("flag = true return 'b'"));
    QTRY_VERIFY_WITH_TIMEOUT(a.isFinished() && b.isFinished(), 10000);
    QCOMPARE(QIsle::waitFor(b), QVariant(QStringLiteral("b")));
    QCOMPARE(QIsle::waitFor(a), QVariant(QStringLiteral("spun")));
}

void tst_Async::timeSliceRunsOnInsideC()
{
    // Inside table.sort it cannot yield: the other request waits for the sort.
    QIsleOptions options;
    options.maxConcurrentRequests = 0;
    options.timeSlice = std::chrono::milliseconds(2);
    auto isle = QIsle::spawn({}, options);
    isle->eval(QStringLiteral("sorted = false bRan = false"));
    QFuture<QVariant> a = isle->spawnEval(QStringLiteral(
            "local t = {} for i = 1, 300 do t[i] = (i * 37) % 300 end\n"
            "table.sort(t, function(x, y) local s = 0 for i = 1, 300 do s = s + i end return x < y end)\n"
            "sorted = true while not bRan do end return 'a'"));
    QFuture<QVariant> b = isle->spawnEval(QStringLiteral("bRan = true return sorted"));
    QTRY_VERIFY_WITH_TIMEOUT(a.isFinished() && b.isFinished(), 20000);
    QCOMPARE(QIsle::waitFor(b), QVariant(true));
    QCOMPARE(QIsle::waitFor(a), QVariant(QStringLiteral("a")));
}

void tst_Async::timeSliceOffByDefault()
{
    // Off: requests interleave only at waits.
    auto isle = QIsle::spawn({}, concurrent(0));
    isle->eval(QStringLiteral("trace = {}"));
    QFuture<QVariant> a = isle->spawnEval(QStringLiteral(
            "local t = os.clock() while os.clock() - t < 0.05 do end trace[#trace + 1] = 'a'"));
    QFuture<QVariant> b = isle->spawnEval(QStringLiteral("trace[#trace + 1] = 'b'"));
    QIsle::waitFor(a);
    QIsle::waitFor(b);
    QCOMPARE(isle->eval(QStringLiteral("return table.concat(trace)")), QVariant(QStringLiteral("ab")));
}

void tst_Async::childRequestOfAwaitingParent()
{
    for (int max : {1, 2, 0}) {
        auto isle = QIsle::spawn([](lua_State *L) { luaL_dostring(L, "function double(x) isle.sleep(5) return 2 * x end"); },
                                 concurrent(max));
        QIsle *raw = isle.get();
        isle->registerAsyncFunction(QStringLiteral("viaIsle"), [raw](const QVariantList &args) {
            return raw->spawnCall(QStringLiteral("double"), args);
        });
        // A queue full of other work behind the parent does not starve the child.
        QFuture<QVariant> parent = isle->spawnEval(QStringLiteral("return viaIsle(viaIsle(5))"));
        QList<QFuture<QVariant>> others;
        for (int i = 0; i < 5; ++i)
            others << isle->spawnEval(QStringLiteral("isle.sleep(10) return %1").arg(i));
        QCOMPARE(QIsle::waitFor(parent), QVariant(qlonglong(20)));
        for (int i = 0; i < 5; ++i)
            QCOMPARE(QIsle::waitFor(others.at(i)), QVariant(qlonglong(i)));
    }
}

void tst_Async::blockingChildFromHostFunction()
{
    auto isle = QIsle::spawn();
    QIsle *raw = isle.get();
    isle->registerAsyncFunction(QStringLiteral("compute"), [raw](const QVariantList &args) {
        // A blocking call on the Lua thread runs inline (no deadlock).
        const QVariant v = raw->eval(QStringLiteral("return %1 * 3").arg(args.value(0).toInt()));
        return readyFuture(v);
    });
    QCOMPARE(isle->eval(QStringLiteral("return compute(4)")), QVariant(qlonglong(12)));
}

QTEST_GUILESS_MAIN(tst_Async)
#include "tst_async.moc"
