// isle.spawn tasks: join/cancel/done, interleaving at waits, structured
// ends, unjoined errors, cancel reaching tasks, bad input.
#include <QIsle/QIsle>
#include <QIsle/QIsleLua>

#include <QtCore/QElapsedTimer>
#include <QtCore/QMutex>
#include <QtCore/QPromise>
#include <QtTest/QtTest>

#include <memory>
#include <thread>
#include <vector>

namespace {

QIsleError errorOf(QFuture<QVariant> future)
{
    try {
        QIsle::waitFor(future);
    } catch (const QIsleError &e) {
        return e;
    }
    return QIsleError(QIsleError::Kind::Runtime, QStringLiteral("<no error>"));
}

// Futures the test holds: "gate()" hands one out per call.
class Gates
{
public:
    QIsle::AsyncHostFunction function()
    {
        return [this](const QVariantList &) {
            auto promise = std::make_shared<QPromise<QVariant>>();
            promise->start();
            QMutexLocker lock(&m_mutex);
            m_promises.push_back(promise);
            return promise->future();
        };
    }
    int count() const
    {
        QMutexLocker lock(&m_mutex);
        return int(m_promises.size());
    }
    QFuture<QVariant> futureAt(int i) const
    {
        QMutexLocker lock(&m_mutex);
        return m_promises.at(std::size_t(i))->future();
    }

private:
    mutable QMutex m_mutex;
    std::vector<std::shared_ptr<QPromise<QVariant>>> m_promises;
};

std::unique_ptr<QIsle> isleWith(int maxConcurrentRequests = 1)
{
    QIsleOptions options;
    options.maxConcurrentRequests = maxConcurrentRequests;
    return QIsle::spawn({}, options);
}

} // namespace

class tst_Tasks : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void joinReturnsAllResults();
    void joinAgainGivesTheSame();
    void tasksInterleaveAtWaits();
    void startsNoLaterThanSpawnersWait();
    void startsNoLaterThanSpawnersEnd();
    void requestEndsWhenItsTasksEnd();
    void unjoinedErrorFailsTheRequest();
    void unjoinedErrorAfterFunctionReturned();
    void joinedErrorIsCatchable();
    void cancelTask();
    void cancelTaskNotStarted();
    void taskCancelsItself();
    void cancelDoneTaskDoesNothing();
    void joinSelf();
    void joinCycle();
    void joinWhereItCannotWait();
    void cancelRequestCancelsTasks();
    void timeoutReachesTasks();
    void functionErrorCancelsTasks();
    void taskTopLevelIsMainChunk_data();
    void taskTopLevelIsMainChunk();
    void tasksWaitForFuturesAndCoroutines();
    void emitFromTasks();
    void joinTaskOfAnotherRequest();
    void badInput_data();
    void badInput();
    void manyTasks();
    void cancelSlicedTask();
};

void tst_Tasks::joinReturnsAllResults()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local t = isle.spawn(function(a, b) return a + b, nil, 'x' end, 1, 2)\n"
                     "local r = table.pack(t:join())\n"
                     "return r.n .. ':' .. r[1] .. ':' .. tostring(r[2]) .. ':' .. r[3]")),
             QVariant(QStringLiteral("3:3:nil:x")));
    QCOMPARE(isle->eval(QStringLiteral("return select('#', isle.spawn(function() end):join())")),
             QVariant(qlonglong(0)));
}

void tst_Tasks::joinAgainGivesTheSame()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local t = isle.spawn(function() isle.sleep(5) return {} end)\n"
                     "local a, b = t:join(), t:join() return a == b and t:done()")),
             QVariant(true));
    QCOMPARE(isle->eval(QStringLiteral(
                     "local e = setmetatable({}, {})\n"
                     "local t = isle.spawn(function() isle.sleep(5) error(e) end)\n"
                     "local ok1, e1 = pcall(t.join, t)\n"
                     "local ok2, e2 = pcall(t.join, t)\n"
                     "return not ok1 and not ok2 and e1 == e and e2 == e")),
             QVariant(true));
}

void tst_Tasks::tasksInterleaveAtWaits()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local trace = {}\n"
                     "local function worker(name) for i = 1, 3 do trace[#trace + 1] = name .. i isle.sleep(0) end end\n"
                     "local a, b = isle.spawn(worker, 'a'), isle.spawn(worker, 'b')\n"
                     "a:join() b:join()\n"
                     "return table.concat(trace, ' ')")),
             QVariant(QStringLiteral("a1 b1 a2 b2 a3 b3")));
    // Side by side: three tasks sleeping 100 ms take about 100 ms.
    QElapsedTimer timer;
    timer.start();
    isle->eval(QStringLiteral("local ts = {} for i = 1, 3 do ts[i] = isle.spawn(isle.sleep, 100) end "
                              "for i = 1, 3 do ts[i]:join() end"));
    QVERIFY2(timer.elapsed() < 280, qPrintable(QString::number(timer.elapsed())));
}

void tst_Tasks::startsNoLaterThanSpawnersWait()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local started = false\n"
                     "local t = isle.spawn(function() started = true end)\n"
                     "local before = started\n"
                     "isle.sleep(0)\n"
                     "return tostring(before) .. ' ' .. tostring(started)")),
             QVariant(QStringLiteral("false true")));
}

void tst_Tasks::startsNoLaterThanSpawnersEnd()
{
    auto isle = isleWith();
    isle->eval(QStringLiteral("ran = false isle.spawn(function() ran = true end)"));
    QCOMPARE(isle->eval(QStringLiteral("return ran")), QVariant(true));
}

void tst_Tasks::requestEndsWhenItsTasksEnd()
{
    auto isle = isleWith();
    QElapsedTimer timer;
    timer.start();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "flag = false isle.spawn(function() isle.sleep(100) flag = true end) return 'main'"));
    QCOMPARE(QIsle::waitFor(f), QVariant(QStringLiteral("main")));
    QVERIFY(timer.elapsed() >= 95);
    QCOMPARE(isle->eval(QStringLiteral("return flag")), QVariant(true));
}

void tst_Tasks::unjoinedErrorFailsTheRequest()
{
    auto isle = isleWith();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QElapsedTimer timer;
    timer.start();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "closed = {}\n"
            "local function guard(name) return setmetatable({}, {__close = function() "
            "closed[#closed + 1] = name .. '=' .. tostring(isle.canceled()) end}) end\n"
            "local g <close> = guard('main')\n"
            "isle.spawn(function() local g <close> = guard('waiter') gate() end)\n"
            "isle.spawn(function() isle.sleep(20) error('boom') end)\n"
            "isle.sleep(10000)\n"
            "closed[#closed + 1] = 'not reached'"));
    const QIsleError e = errorOf(f);
    QVERIFY(timer.elapsed() < 5000);
    QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
    QCOMPARE(e.message(), QStringLiteral("boom"));
    QCOMPARE(e.line(), 5);
    QVERIFY(!f.isCanceled() || e.kind() == QIsleError::Kind::Runtime);
    QVERIFY(gates.futureAt(0).isCanceled()); // the other task's wait was canceled
    const QString closed = isle->eval(QStringLiteral("table.sort(closed) return table.concat(closed, ',')")).toString();
    QCOMPARE(closed, QStringLiteral("main=true,waiter=true"));
}

void tst_Tasks::unjoinedErrorAfterFunctionReturned()
{
    auto isle = isleWith();
    const QIsleError e = errorOf(isle->spawnEval(QStringLiteral(
            "isle.spawn(function() isle.sleep(10) error('late', 0) end) return 1")));
    QCOMPARE(e.message(), QStringLiteral("late"));
}

void tst_Tasks::joinedErrorIsCatchable()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local t = isle.spawn(function() isle.sleep(5) error('boom', 0) end)\n"
                     "local ok, e = pcall(t.join, t) return tostring(ok) .. e")),
             QVariant(QStringLiteral("falseboom")));
    // Uncaught in the joiner: the request fails with it.
    const QIsleError e = errorOf(isle->spawnEval(QStringLiteral(
            "local t = isle.spawn(function() isle.sleep(5) error('boom', 0) end) t:join()")));
    QCOMPARE(e.message(), QStringLiteral("boom"));
}

void tst_Tasks::cancelTask()
{
    auto isle = isleWith();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QCOMPARE(isle->eval(QStringLiteral(
                     "local log = {}\n"
                     "local t = isle.spawn(function()\n"
                     "  local g <close> = setmetatable({}, {__close = function() log[#log + 1] = 'closed ' .. tostring(isle.canceled()) end})\n"
                     "  gate() log[#log + 1] = 'not reached' end)\n"
                     "isle.sleep(0)\n"
                     "local doneBefore = t:done()\n"
                     "t:cancel() t:cancel()\n"
                     "local ok, e = pcall(t.join, t)\n"
                     "return tostring(doneBefore) .. ' ' .. tostring(t:done()) .. ' ' .. tostring(ok) .. ' ' .. "
                     "tostring(e:find('canceled') ~= nil) .. ' ' .. table.concat(log, ',')")),
             QVariant(QStringLiteral("false true false true closed true")));
    QVERIFY(gates.futureAt(0).isCanceled());
    // A canceled task is no error of the request (nobody joins it here).
    QCOMPARE(isle->eval(QStringLiteral("local t = isle.spawn(isle.sleep, 1e9) isle.sleep(0) t:cancel() return 'ok'")),
             QVariant(QStringLiteral("ok")));
}

void tst_Tasks::cancelTaskNotStarted()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "ran = false local t = isle.spawn(function() ran = true end) t:cancel()\n"
                     "local canceled = select(2, pcall(t.join, t)):find('canceled') ~= nil\n"
                     "return tostring(t:done()) .. ' ' .. tostring(canceled)")),
             QVariant(QStringLiteral("true true")));
    QCOMPARE(isle->eval(QStringLiteral("return ran")), QVariant(false));
}

void tst_Tasks::taskCancelsItself()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "reached = false local t\n"
                     "t = isle.spawn(function() isle.sleep(1) pcall(t.cancel, t) reached = true end)\n"
                     "local ok, e = pcall(t.join, t) return tostring(reached) .. ' ' .. tostring(ok)")),
             QVariant(QStringLiteral("false false")));
}

void tst_Tasks::cancelDoneTaskDoesNothing()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local t = isle.spawn(function() return 5 end) local v = t:join() t:cancel() return v + t:join()")),
             QVariant(qlonglong(10)));
}

void tst_Tasks::joinSelf()
{
    auto isle = isleWith();
    const QString message = isle->eval(QStringLiteral(
            "local t t = isle.spawn(function() return t:join() end)\n"
            "return select(2, pcall(t.join, t))")).toString();
    QVERIFY2(message.contains(QStringLiteral("cannot join")), qPrintable(message));
}

void tst_Tasks::joinCycle()
{
    auto isle = isleWith();
    const QString message = isle->eval(QStringLiteral(
            "local a, b\n"
            "a = isle.spawn(function() isle.sleep(1) return b:join() end)\n"
            "b = isle.spawn(function() isle.sleep(5) return a:join() end)\n"
            "local ok, e = pcall(a.join, a) return e")).toString();
    QVERIFY2(message.contains(QStringLiteral("cannot join")), qPrintable(message));
}

void tst_Tasks::joinWhereItCannotWait()
{
    auto isle = isleWith();
    const QIsleError e = errorOf(isle->spawnEval(QStringLiteral(
            "local t = isle.spawn(isle.sleep, 10)\n"
            "table.sort({2, 1}, function(a, b) t:join() return a < b end)")));
    QVERIFY2(e.message().contains(QStringLiteral("cannot wait here")), qPrintable(e.message()));
    // A finished task needs no wait: join works anywhere.
    QCOMPARE(isle->eval(QStringLiteral(
                     "local t = isle.spawn(function() return 1 end) t:join()\n"
                     "local s = {2, 1} table.sort(s, function(a, b) return a + t:join() < b + t:join() end) return s[1]")),
             QVariant(qlonglong(1)));
}

void tst_Tasks::cancelRequestCancelsTasks()
{
    auto isle = isleWith();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "closed = 0\n"
            "for i = 1, 3 do isle.spawn(function() local g <close> = setmetatable({}, {__close = function() "
            "closed = closed + 1 end}) gate() end) end\n"
            "isle.sleep(1e9)"));
    QTRY_COMPARE(gates.count(), 3);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    for (int i = 0; i < 3; ++i)
        QVERIFY(gates.futureAt(i).isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return closed")), QVariant(qlonglong(3)));
    // Also once the function has returned and only tasks run.
    QFuture<QVariant> g = isle->spawnEval(QStringLiteral("isle.spawn(function() gate() end) return 1"));
    QTRY_COMPARE(gates.count(), 4);
    g.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(g.isFinished(), 5000);
    QVERIFY(g.isCanceled());
    QVERIFY(gates.futureAt(3).isCanceled());
}

void tst_Tasks::timeoutReachesTasks()
{
    auto isle = isleWith();
    QIsleRequestOptions options;
    options.timeout = std::chrono::milliseconds(60);
    QCOMPARE(errorOf(isle->spawnEval(QStringLiteral("isle.spawn(isle.sleep, 1e9) return 1"), options)).kind(),
             QIsleError::Kind::Timeout);
    QCOMPARE(errorOf(isle->spawnEval(QStringLiteral("isle.spawn(function() while true do end end) isle.sleep(1e9)"),
                                     options))
                     .kind(),
             QIsleError::Kind::Timeout);
}

void tst_Tasks::functionErrorCancelsTasks()
{
    auto isle = isleWith();
    Gates gates;
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    const QIsleError e = errorOf(isle->spawnEval(QStringLiteral(
            "isle.spawn(function() gate() end) isle.sleep(5) error('main failed', 0)")));
    QCOMPARE(e.message(), QStringLiteral("main failed"));
    QVERIFY(gates.futureAt(0).isCanceled());
}

void tst_Tasks::taskTopLevelIsMainChunk_data()
{
    QTest::addColumn<QString>("body");
    QTest::addColumn<QVariant>("expected");
    QTest::addRow("running main") << "return select(2, coroutine.running())" << QVariant(true);
    QTest::addRow("own thread") << "return coroutine.running() ~= outer" << QVariant(true);
    QTest::addRow("not yieldable") << "return coroutine.isyieldable()" << QVariant(false);
    QTest::addRow("bare yield") << "return select(2, pcall(coroutine.yield))"
                                << QVariant(QStringLiteral("attempt to yield from outside a coroutine"));
}

void tst_Tasks::taskTopLevelIsMainChunk()
{
    QFETCH(QString, body);
    QFETCH(QVariant, expected);
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral("outer = coroutine.running() return isle.spawn(function() %1 end):join()").arg(body)),
             expected);
}

void tst_Tasks::tasksWaitForFuturesAndCoroutines()
{
    auto isle = isleWith(0);
    isle->registerAsyncFunction(QStringLiteral("echo"), [](const QVariantList &args) {
        auto promise = std::make_shared<QPromise<QVariant>>();
        promise->start();
        QFuture<QVariant> f = promise->future();
        std::thread([promise, v = args.value(0)] {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            promise->addResult(v);
            promise->finish();
        }).detach();
        return f;
    });
    QCOMPARE(isle->eval(QStringLiteral(
                     "local ts = {}\n"
                     "for i = 1, 5 do ts[i] = isle.spawn(function()\n"
                     "  local gen = coroutine.wrap(function() coroutine.yield(echo(i)) coroutine.yield(echo(i * 10)) end)\n"
                     "  return gen() + gen() end) end\n"
                     "local s = 0 for i = 1, 5 do s = s + ts[i]:join() end return s")),
             QVariant(qlonglong(11 * 15)));
}

void tst_Tasks::emitFromTasks()
{
    auto isle = isleWith();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "isle.emit('a') local t = isle.spawn(function() isle.emit('b') isle.sleep(1) isle.emit('c') end)\n"
            "isle.sleep(0) isle.emit('d') t:join() return 'r'"));
    QCOMPARE(QIsle::waitFor(f), QVariant(QStringLiteral("r")));
    QCOMPARE(f.resultCount(), 5);
    QStringList emitted;
    for (int i = 1; i < 5; ++i)
        emitted << f.resultAt(i).toString();
    QCOMPARE(emitted, (QStringList{"a", "b", "d", "c"}));
}

void tst_Tasks::joinTaskOfAnotherRequest()
{
    auto isle = isleWith(0);
    QFuture<QVariant> a = isle->spawnEval(QStringLiteral("shared = isle.spawn(function() isle.sleep(30) return 7 end) return 1"));
    QFuture<QVariant> b = isle->spawnEval(QStringLiteral("while not shared do isle.sleep(1) end return shared:join() * 2"));
    QCOMPARE(QIsle::waitFor(b), QVariant(qlonglong(14)));
    QCOMPARE(QIsle::waitFor(a), QVariant(qlonglong(1)));
}

void tst_Tasks::badInput_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QString>("message");
    QTest::addRow("spawn a non-function") << "isle.spawn(42)" << "function expected";
    QTest::addRow("spawn nothing") << "isle.spawn()" << "function expected";
    QTest::addRow("join wrong self") << "local t = isle.spawn(function() end) t.join({})" << "isle.task expected";
    QTest::addRow("cancel wrong self") << "local t = isle.spawn(function() end) t.cancel(1)" << "isle.task expected";
    QTest::addRow("done wrong self") << "local t = isle.spawn(function() end) t.done()" << "isle.task expected";
    QTest::addRow("metatable locked") << "error(getmetatable(isle.spawn(function() end)))" << "locked";
}

void tst_Tasks::badInput()
{
    QFETCH(QString, chunk);
    QFETCH(QString, message);
    auto isle = isleWith();
    const QIsleError e = errorOf(isle->spawnEval(chunk));
    QVERIFY2(e.message().contains(message), qPrintable(e.message()));
    // Outside a request (exec closures, init) there is nothing to spawn into.
    const QVariant fromExec = isle->exec([](lua_State *L) {
        const int status = luaL_dostring(L, "isle.spawn(function() end)");
        const QVariant m = QString::fromUtf8(lua_tostring(L, -1));
        lua_pop(L, 1);
        return status == LUA_OK ? QVariant() : m;
    });
    QVERIFY2(fromExec.toString().contains(QStringLiteral("isle.spawn")), qPrintable(fromExec.toString()));
}

void tst_Tasks::manyTasks()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local ts = {} for i = 1, 2000 do ts[i] = isle.spawn(function(x) isle.sleep(0) return x end, i) end\n"
                     "local s = 0 for i = 1, 2000 do s = s + ts[i]:join() end return s")),
             QVariant(qlonglong(2000 * 2001 / 2)));
}

void tst_Tasks::cancelSlicedTask()
{
    // CPU-bound tasks taking turns (time slices) still stop when canceled,
    // or when a sibling's failure cancels them.
    QIsleOptions options;
    options.timeSlice = std::chrono::milliseconds(5);
    auto isle = QIsle::spawn({}, options);
    QCOMPARE(isle->eval(QStringLiteral(
                     "local t = isle.spawn(function() while true do end end)\n"
                     "local u = isle.spawn(function() local n = 0 while n < 1e7 do n = n + 1 end return n end)\n"
                     "local n = u:join() t:cancel()\n"
                     "local ok, e = pcall(t.join, t) return n .. ' ' .. tostring(e:find('canceled') ~= nil)")),
             QVariant(QStringLiteral("10000000 true")));
    const QIsleError e = errorOf(isle->spawnEval(QStringLiteral(
            "isle.spawn(function() while true do end end)\n"
            "isle.spawn(function() local n = 0 while n < 1e6 do n = n + 1 end error('sibling failed', 0) end)\n"
            "isle.sleep(1e9)")));
    QCOMPARE(e.message(), QStringLiteral("sibling failed"));
}

QTEST_GUILESS_MAIN(tst_Tasks)
#include "tst_tasks.moc"
