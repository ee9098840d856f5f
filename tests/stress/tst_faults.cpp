// Faults: host code and scripts that fail in unusual ways. Each one must end
// as a clear QIsleError (or, for __gc, be contained), and the VM must serve
// the next request.
#include <QIsle/QIsle>

#include <QtCore/QPoint>
#include <QtCore/QPromise>
#include <QtTest/QtTest>

#include <QIsle/QIsleLua>

#include <array>
#include <memory>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

struct NotAnException
{
    int code;
};

QFuture<QVariant> failedFuture(std::exception_ptr error)
{
    QPromise<QVariant> promise;
    promise.start();
    promise.setException(error);
    promise.finish();
    return promise.future();
}

std::unique_ptr<QIsle> faultyIsle()
{
    auto isle = QIsle::spawn();
    isle->registerFunction(QStringLiteral("fault.std"), [](const QVariantList &) -> QVariant {
        throw std::runtime_error("std fault");
    });
    isle->registerFunction(QStringLiteral("fault.int"), [](const QVariantList &) -> QVariant { throw 42; });
    isle->registerFunction(QStringLiteral("fault.struct"), [](const QVariantList &) -> QVariant {
        throw NotAnException{7};
    });
    isle->registerFunction(QStringLiteral("fault.badAlloc"), [](const QVariantList &) -> QVariant {
        throw std::bad_alloc();
    });
    isle->registerFunction(QStringLiteral("fault.isleError"), [](const QVariantList &) -> QVariant {
        throw QIsleError(QIsleError::Kind::NotFound, QStringLiteral("host says missing"));
    });
    // Async host functions that fail in every way they can.
    isle->registerAsyncFunction(QStringLiteral("afault.throwsStd"), [](const QVariantList &) -> QFuture<QVariant> {
        throw std::runtime_error("async std fault");
    });
    isle->registerAsyncFunction(QStringLiteral("afault.throwsInt"), [](const QVariantList &) -> QFuture<QVariant> {
        throw 42;
    });
    isle->registerAsyncFunction(QStringLiteral("afault.failsStd"), [](const QVariantList &) {
        return failedFuture(std::make_exception_ptr(std::runtime_error("future std fault")));
    });
    isle->registerAsyncFunction(QStringLiteral("afault.failsIsleError"), [](const QVariantList &) {
        return failedFuture(std::make_exception_ptr(
                QIsleError(QIsleError::Kind::NotFound, QStringLiteral("future isle fault"))));
    });
    isle->registerAsyncFunction(QStringLiteral("afault.failsNonStd"), [](const QVariantList &) {
        return failedFuture(std::make_exception_ptr(NotAnException{5}));
    });
    isle->registerAsyncFunction(QStringLiteral("afault.badResult"), [](const QVariantList &) {
        return QtFuture::makeReadyFuture(QVariant(QPoint(1, 2)));
    });
    isle->registerAsyncFunction(QStringLiteral("afault.invalid"), [](const QVariantList &) {
        return QFuture<QVariant>(); // Qt: canceled and finished
    });
    // Pending until the isle goes (its promises die with the function):
    // canceled by the script's stop, or refused where it cannot wait.
    auto pending = std::make_shared<std::vector<std::shared_ptr<QPromise<QVariant>>>>();
    isle->registerAsyncFunction(QStringLiteral("afault.pending"), [pending](const QVariantList &) {
        auto promise = std::make_shared<QPromise<QVariant>>();
        promise->start();
        pending->push_back(promise); // Lua thread only
        return promise->future();
    });
    isle->eval(QStringLiteral("survivor = 'still here'"));
    return isle;
}

// The VM serves, and kept its state.
bool serves(QIsle *isle)
{
    return isle->eval(QStringLiteral("return 1 + 1")) == QVariant(qlonglong(2))
            && isle->eval(QStringLiteral("return survivor")) == QVariant(QStringLiteral("still here"));
}

} // namespace

class tst_Faults : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void evalFaults_data();
    void evalFaults();
    void execFaults_data();
    void execFaults();
    void endlessTostringOfErrorObjectIsCancelable();
    void gcErrorIsContained_data();
    void gcErrorIsContained();
    void gcErrorWhileClosing();
    void gcCallsHostFunctionWhileClosing();
    void nestedBlockingCallWhileShutdownDrains();
    void emitsReadWhileTheRequestFails();
};

void tst_Faults::evalFaults_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QIsleError::Kind>("kind");
    QTest::addColumn<QString>("messagePart");

    using K = QIsleError::Kind;
    QTest::addRow("host-std") << "fault.std()" << K::Callback << "std fault";
    QTest::addRow("host-int") << "fault.int()" << K::Callback << "unknown C++ exception";
    QTest::addRow("host-struct") << "fault.struct()" << K::Callback << "unknown C++ exception";
    QTest::addRow("host-bad-alloc") << "fault.badAlloc()" << K::Callback << "";
    QTest::addRow("host-isle-error") << "fault.isleError()" << K::Callback << "host says missing";
    QTest::addRow("host-in-coroutine") << "coroutine.wrap(function() fault.std() end)()" << K::Callback << "std fault";
    QTest::addRow("host-after-pcall") << "local ok = pcall(fault.struct)\nfault.std()" << K::Callback << "std fault";
    QTest::addRow("error-table") << "error({code = 1})" << K::Runtime << "table";
    QTest::addRow("error-nil") << "error(nil)" << K::Runtime << "nil";
    QTest::addRow("error-no-value") << "error()" << K::Runtime << "nil";
    QTest::addRow("error-boolean") << "error(false)" << K::Runtime << "boolean";
    QTest::addRow("error-function") << "error(print)" << K::Runtime << "function";
    QTest::addRow("tostring-errors")
            << "error(setmetatable({}, {__tostring = function() error('again') end}))" << K::Runtime << "table";
    QTest::addRow("tostring-not-text")
            << "error(setmetatable({}, {__tostring = function() return {} end}))" << K::Runtime << "table";
    QTest::addRow("tostring-throws-host")
            << "error(setmetatable({}, {__tostring = function() fault.struct() end}))" << K::Runtime << "table";
    QTest::addRow("not-utf8") << "error('\\255\\254 bytes')" << K::Runtime << "bytes";
    QTest::addRow("huge-message") << "error(string.rep('x', 1 << 20))" << K::Runtime << "xxxxxxxx";
    QTest::addRow("stack-overflow") << "local function f() return f() + 1 end return f()" << K::Runtime << "stack overflow";
    QTest::addRow("c-stack-overflow")
            << "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x"
            << K::Runtime << "stack overflow";
    QTest::addRow("xpcall-handler-errors")
            << "local ok, m = xpcall(error, function() error('in handler') end)\nerror(m)" << K::Runtime << "";

    // Async host functions and what waits for them.
    QTest::addRow("async-throws-std") << "afault.throwsStd()" << K::Callback << "async std fault";
    QTest::addRow("async-throws-non-std") << "afault.throwsInt()" << K::Callback << "unknown C++ exception";
    QTest::addRow("async-fails-std") << "afault.failsStd()" << K::Callback << "future std fault";
    QTest::addRow("async-fails-isle-error") << "afault.failsIsleError()" << K::Callback << "future isle fault";
    QTest::addRow("async-fails-non-std") << "afault.failsNonStd()" << K::Callback << "unknown exception";
    QTest::addRow("async-bad-result") << "afault.badResult()" << K::Conversion << "QPoint";
    QTest::addRow("async-invalid-future") << "afault.invalid()" << K::Callback << "canceled";
    QTest::addRow("async-wait-in-sort")
            << "table.sort({3, 2, 1}, function(a, b) afault.pending() return a < b end)" << K::Runtime
            << "cannot wait here";
    QTest::addRow("async-wait-in-gsub") << "string.gsub('ab', '.', function() afault.pending() end)"
                                        << K::Runtime << "cannot wait here";
    QTest::addRow("async-fault-in-task")
            << "local t = isle.spawn(afault.failsStd)\nt:join()" << K::Runtime << "future std fault"; // join raises it again
    QTest::addRow("task-error-object-tostring-errors")
            << "isle.spawn(function() error(setmetatable({}, {__tostring = function() error('again') end})) end)\n"
               "isle.sleep(1e9)"
            << K::Runtime << "table";
    QTest::addRow("task-error-table-joined")
            << "local t = isle.spawn(error, {code = 1})\nlocal ok, e = pcall(t.join, t)\nerror(e)" << K::Runtime
            << "table";
    QTest::addRow("task-error-nil") << "isle.spawn(error)\nisle.sleep(1e9)" << K::Runtime << "nil";
    QTest::addRow("task-stack-overflow")
            << "isle.spawn(function() local function f() return f() + 1 end return f() end)\nisle.sleep(1e9)"
            << K::Runtime << "stack overflow";
    QTest::addRow("task-joins-itself")
            << "local t\nt = isle.spawn(function() isle.sleep(0) return t:join() end)\nreturn t:join()" << K::Runtime
            << "cannot join";
    QTest::addRow("channel-send-closed-while-waiting")
            << "local ch = isle.channel()\nisle.spawn(function() isle.sleep(1) ch:close() end)\nch:send(1)"
            << K::Runtime << "closed";
    QTest::addRow("channel-bad-self") << "local ch = isle.channel()\nch.send({}, 1)" << K::Runtime << "isle.channel";
    QTest::addRow("channel-negative-capacity") << "isle.channel(-1)" << K::Runtime << "capacity";
    QTest::addRow("select-not-a-channel") << "isle.select({isle.channel(), 7})" << K::Runtime << "not a channel";
    QTest::addRow("select-empty") << "isle.select({})" << K::Runtime << "empty";
    QTest::addRow("spawn-not-a-function") << "isle.spawn(42)" << K::Runtime << "function";
}

void tst_Faults::evalFaults()
{
    QFETCH(QString, chunk);
    QFETCH(QIsleError::Kind, kind);
    QFETCH(QString, messagePart);
    auto isle = faultyIsle();
    try {
        const QVariant r = isle->eval(chunk);
        QFAIL(qPrintable(QStringLiteral("no error; returned %1").arg(r.toString())));
    } catch (const QIsleError &e) {
        QVERIFY2(e.kind() == kind, e.what());
        QVERIFY2(e.message().contains(messagePart), e.what());
        QVERIFY2(qstrlen(e.what()) > 0, "what() is empty");
    }
    QVERIFY(serves(isle.get()));
}

void tst_Faults::execFaults_data()
{
    QTest::addColumn<int>("fault");
    QTest::addColumn<QIsleError::Kind>("kind");
    QTest::addColumn<QString>("messagePart");

    using K = QIsleError::Kind;
    QTest::addRow("lua_error-string") << 0 << K::Runtime << "closure string";
    QTest::addRow("lua_error-table") << 1 << K::Runtime << "table";
    QTest::addRow("lua_error-nil") << 2 << K::Runtime << "nil";
    QTest::addRow("throws-non-std") << 3 << K::Callback << "unknown C++ exception";
    QTest::addRow("throws-bad-alloc") << 4 << K::Memory << "memory";
    QTest::addRow("throws-isle-error") << 5 << K::Conversion << "closure conversion";
    QTest::addRow("lua_error-after-pushes") << 6 << K::Runtime << "deep";
}

void tst_Faults::execFaults()
{
    QFETCH(int, fault);
    QFETCH(QIsleError::Kind, kind);
    QFETCH(QString, messagePart);
    auto isle = faultyIsle();
    QFuture<QVariant> f = isle->spawnExec([fault](lua_State *L) -> QVariant {
        switch (fault) {
        case 0:
            lua_pushliteral(L, "closure string");
            lua_error(L);
            break;
        case 1:
            lua_newtable(L);
            lua_error(L);
            break;
        case 2:
            lua_pushnil(L);
            lua_error(L);
            break;
        case 3:
            throw NotAnException{3};
        case 4:
            throw std::bad_alloc();
        case 5:
            throw QIsleError(QIsleError::Kind::Conversion, QStringLiteral("closure conversion"));
        case 6:
            // Leaves values on the stack: the error must unwind them.
            luaL_checkstack(L, 100, "test");
            for (int i = 0; i < 100; ++i)
                lua_pushinteger(L, i);
            luaL_error(L, "deep");
            break;
        }
        return {};
    });
    try {
        QIsle::waitFor(f);
        QFAIL("expected an error");
    } catch (const QIsleError &e) {
        QVERIFY2(e.kind() == kind, e.what());
        QVERIFY2(e.message().contains(messagePart, Qt::CaseInsensitive), e.what());
    }
    QVERIFY(serves(isle.get()));
    // The failed closure left nothing behind on the stack.
    QCOMPARE(isle->exec([](lua_State *L) { return QVariant(lua_gettop(L)); }).toInt(), 0);
}

void tst_Faults::endlessTostringOfErrorObjectIsCancelable()
{
    // Describing the error object runs its __tostring: one that never
    // returns must still be stoppable.
    auto isle = faultyIsle();
    QFuture<QVariant> f = isle->spawnEval(
            QStringLiteral("error(setmetatable({}, {__tostring = function() while true do end end}))"));
    QTest::qWait(50);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 10000);
    QVERIFY(serves(isle.get()));
}

void tst_Faults::gcErrorIsContained_data()
{
    QTest::addColumn<QString>("finalizer");
    QTest::addRow("error-string") << "function() error('gc boom') end";
    QTest::addRow("error-table") << "function() error({}) end";
    QTest::addRow("host-throws") << "function() fault.std() end";
    QTest::addRow("host-throws-non-std") << "function() fault.struct() end";
    QTest::addRow("tostring-errors")
            << "function() error(setmetatable({}, {__tostring = function() error('again') end})) end";
    QTest::addRow("waits") << "function() afault.pending() end"; // cannot wait here
    QTest::addRow("selects") << "function() isle.select({isle.channel()}, 1000) end";
    QTest::addRow("receives") << "function() isle.channel():recv() end";
}

void tst_Faults::gcErrorIsContained()
{
    // Lua 5.4 turns an error in __gc into a warning: the request that
    // happened to collect goes on, and so does the VM.
    QFETCH(QString, finalizer);
    auto isle = faultyIsle();
    const QVariant r = isle->eval(QStringLiteral("for i = 1, 10 do setmetatable({}, {__gc = %1}) end\n"
                                                 "collectgarbage() collectgarbage()\n"
                                                 "return 'after'")
                                          .arg(finalizer));
    QCOMPARE(r, QVariant(QStringLiteral("after")));
    QVERIFY(serves(isle.get()));
    // And once more while closing.
    isle->eval(QStringLiteral("leftover = setmetatable({}, {__gc = %1})").arg(finalizer));
    isle->shutdown();
    QVERIFY(!isle->isAlive());
}

void tst_Faults::gcErrorWhileClosing()
{
    auto isle = faultyIsle();
    isle->eval(QStringLiteral("for i = 1, 100 do setmetatable({}, {__gc = function() error('closing ' .. i) end}) end"));
    QElapsedTimer timer;
    timer.start();
    isle.reset(); // no shutdown(): the destructor closes the VM
    QVERIFY2(timer.elapsed() < 2000, qPrintable(QString::number(timer.elapsed())));
}

void tst_Faults::gcCallsHostFunctionWhileClosing()
{
    // Lua finalizes the newest objects first. The host function registered
    // after this object is finalized before it; calling it from the older
    // object's __gc must give a Lua error, not call a destroyed
    // std::function (a use after free that ASan reports).
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("keeper = setmetatable({}, {__gc = function() late.call() end})"));
    std::array<char, 64> bulk{}; // big enough that std::function stores it on the heap
    bulk.fill('x');
    auto calls = std::make_shared<std::atomic<int>>(0);
    isle->registerFunction(QStringLiteral("late.call"), [bulk, calls](const QVariantList &) {
        calls->fetch_add(1);
        return QVariant(int(bulk[0]));
    });
    QCOMPARE(isle->eval(QStringLiteral("return late.call()")), QVariant(qlonglong('x')));
    isle->shutdown();
    QVERIFY(!isle->isAlive());
    QCOMPARE(calls->load(), 1); // the finalizer's call must not reach the destroyed function
}

void tst_Faults::nestedBlockingCallWhileShutdownDrains()
{
    // shutdown() runs what was queued before it; a queued request whose host
    // function makes a blocking call (run inline, nested) is such a request
    // and must succeed, not fail with "the isle is shut down".
    auto isle = QIsle::spawn();
    QIsle *raw = isle.get();
    isle->registerFunction(QStringLiteral("nested"), [raw](const QVariantList &) {
        return raw->eval(QStringLiteral("return 41 + 1"));
    });
    QList<QFuture<QVariant>> futures;
    futures << isle->spawnEval(QStringLiteral("isle.sleep(20)")); // keeps the rest queued
    for (int i = 0; i < 5; ++i)
        futures << isle->spawnEval(QStringLiteral("return nested()"));
    isle->shutdown();
    for (qsizetype i = 1; i < futures.size(); ++i) {
        try {
            QCOMPARE(QIsle::waitFor(futures.at(i)), QVariant(qlonglong(42)));
        } catch (const QIsleError &e) {
            QFAIL(e.what());
        }
    }
}

void tst_Faults::emitsReadWhileTheRequestFails()
{
    // Another thread reads a request's emits (as a QFutureWatcher's
    // resultReadyAt slot or QIsleJob does) while the request fails. Qt 6.4's
    // QPromise::setException clears the stored results without the future's
    // lock: the worker must not use it (a use after free that crashed
    // tst_pool once, and that the sanitizers report here).
    auto isle = QIsle::spawn();
    for (int round = 0; round < 20; ++round) {
        QFuture<QVariant> f = isle->spawnEval(
                QStringLiteral("for i = 1, 200 do isle.emit(i) end error('failed after its emits')"));
        std::thread reader([f] {
            while (!f.isFinished()) {
                const int n = f.resultCount();
                for (int i = 1; i <= n; ++i) {
                    try {
                        if (f.isResultReadyAt(i))
                            (void)f.resultAt(i).toInt();
                    } catch (const QIsleError &) {
                        break; // failed meanwhile: resultAt() rethrows
                    }
                }
            }
        });
        try {
            QIsle::waitFor(f);
            reader.join();
            QFAIL("expected an error");
        } catch (const QIsleError &e) {
            reader.join();
            QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
            QVERIFY2(e.message().contains(QLatin1String("failed after its emits")), e.what());
        }
    }
    QCOMPARE(isle->eval(QStringLiteral("return 1 + 1")), QVariant(qlonglong(2)));
}

QTEST_GUILESS_MAIN(tst_Faults)
#include "tst_faults.moc"
