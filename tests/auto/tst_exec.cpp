// exec / spawnExec: C++ closures on the Lua thread.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

#include <QIsle/QIsleLua>

class tst_Exec : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void runsOnLuaThread();
    void readsAndWritesState();
    void luaErrorInClosure();
    void cppExceptionInClosure();
    void unknownExceptionInClosure();
    void valueHelpers();
    void stackBalancedAfterwards();
    void closureCapturesEndOnLuaThread();
};

void tst_Exec::runsOnLuaThread()
{
    auto isle = QIsle::spawn();
    QThread *luaThread = nullptr;
    isle->exec([&](lua_State *) {
        luaThread = QThread::currentThread();
        return QVariant();
    });
    QVERIFY(luaThread);
    QVERIFY(luaThread != QThread::currentThread());
    QCOMPARE(luaThread->objectName(), QStringLiteral("QIsle"));
}

void tst_Exec::readsAndWritesState()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("x = 20"));
    const QVariant r = isle->exec([](lua_State *L) {
        lua_getglobal(L, "x");
        const lua_Integer x = lua_tointeger(L, -1);
        lua_pushinteger(L, x + 1);
        lua_setglobal(L, "y");
        return QVariant(qlonglong(x * 2));
    });
    QCOMPARE(r, QVariant(qlonglong(40)));
    QCOMPARE(isle->eval(QStringLiteral("return y")), QVariant(qlonglong(21)));
}

void tst_Exec::luaErrorInClosure()
{
    auto isle = QIsle::spawn();
    try {
        isle->exec([](lua_State *L) -> QVariant {
            luaL_error(L, "closure says no");
            return {};
        });
        QFAIL("expected a Runtime error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QVERIFY2(e.message().contains(QStringLiteral("closure says no")), qPrintable(e.message()));
    }
    QCOMPARE(isle->eval(QStringLiteral("return 1")), QVariant(qlonglong(1)));
}

void tst_Exec::cppExceptionInClosure()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnExec([](lua_State *) -> QVariant { throw std::logic_error("bad host"); });
    try {
        QIsle::waitFor(f);
        QFAIL("expected a Callback error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Callback);
        QCOMPARE(e.message(), QStringLiteral("bad host"));
    }
    QCOMPARE(isle->eval(QStringLiteral("return 2")), QVariant(qlonglong(2)));
}

void tst_Exec::unknownExceptionInClosure()
{
    auto isle = QIsle::spawn();
    try {
        isle->exec([](lua_State *) -> QVariant { throw 42; });
        QFAIL("expected a Callback error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Callback);
    }
    QCOMPARE(isle->eval(QStringLiteral("return 3")), QVariant(qlonglong(3)));
}

void tst_Exec::valueHelpers()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("function describe(t) return t.name .. ':' .. #t.items end"));
    const QVariant r = isle->exec([](lua_State *L) {
        lua_getglobal(L, "describe");
        QIsleValue::push(L, QVariantMap{{QStringLiteral("name"), QStringLiteral("box")},
                                        {QStringLiteral("items"), QVariantList{1, 2, 3}}});
        lua_call(L, 1, 1);
        QVariant v = QIsleValue::read(L, -1);
        lua_pop(L, 1);
        return v;
    });
    QCOMPARE(r, QVariant(QStringLiteral("box:3")));
}

void tst_Exec::stackBalancedAfterwards()
{
    auto isle = QIsle::spawn();
    int before = -1;
    int after = -1;
    isle->exec([&](lua_State *L) {
        before = lua_gettop(L);
        lua_pushinteger(L, 1); // left behind on purpose
        return QVariant();
    });
    isle->exec([&](lua_State *L) {
        after = lua_gettop(L);
        return QVariant();
    });
    QCOMPARE(after, before);
}

// A finished request is freed by the thread that submits next (issue 18),
// but what an exec closure captured is still destroyed on the Lua thread,
// right after the closure ran: captures may hold what belongs there.
void tst_Exec::closureCapturesEndOnLuaThread()
{
    struct Witness
    {
        std::shared_ptr<std::atomic<QThread *>> endedOn; // outlives a failed test
        ~Witness() { endedOn->store(QThread::currentThread()); }
    };
    auto isle = QIsle::spawn();
    QThread *luaThread = nullptr;
    isle->exec([&luaThread](lua_State *) {
        luaThread = QThread::currentThread();
        return QVariant();
    });
    for (const bool blocking : {false, true}) {
        auto endedOn = std::make_shared<std::atomic<QThread *>>(nullptr);
        auto witness = std::make_shared<Witness>();
        witness->endedOn = endedOn;
        QIsle::ExecFunction fn = [witness](lua_State *) { return QVariant(qlonglong(7)); };
        witness.reset(); // the closure holds the last reference
        if (blocking) {
            QCOMPARE(isle->exec(std::move(fn)), QVariant(qlonglong(7)));
        } else {
            QFuture<QVariant> f = isle->spawnExec(std::move(fn));
            QTRY_VERIFY(f.isFinished());
            QCOMPARE(f.result(), QVariant(qlonglong(7)));
        }
        QTRY_VERIFY(endedOn->load() != nullptr);
        QCOMPARE(endedOn->load(), luaThread);
    }
}

QTEST_GUILESS_MAIN(tst_Exec)
#include "tst_exec.moc"
