// eval / spawnEval: results, state kept across requests, init.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

#include <QIsle/QIsleLua>

#include <cmath>

class tst_Eval : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void scalars_data();
    void scalars();
    void nothingReturnedIsNull();
    void firstOfManyResults();
    void stateKeptAcrossRequests();
    void spawnEvalFuture();
    void initSetsGlobals();
    void initLuaErrorIsInit();
    void initThrowIsInit();
    void bytecodeRefused();
    void allocationChurnKeepsValues();
    void startupObjectsGrowShrinkAndGo_data();
    void startupObjectsGrowShrinkAndGo();
};

void tst_Eval::scalars_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QVariant>("expected");
    QTest::addRow("integer") << "return 1 + 2" << QVariant(qlonglong(3));
    QTest::addRow("negative") << "return -7" << QVariant(qlonglong(-7));
    QTest::addRow("maxinteger") << "return math.maxinteger" << QVariant(qlonglong(LUA_MAXINTEGER));
    QTest::addRow("float") << "return 1.5" << QVariant(1.5);
    QTest::addRow("float-integral") << "return 3.0" << QVariant(3.0);
    QTest::addRow("true") << "return true" << QVariant(true);
    QTest::addRow("false") << "return false" << QVariant(false);
    QTest::addRow("string") << "return 'hé' .. 'llo'" << QVariant(QStringLiteral("héllo"));
    QTest::addRow("empty-string") << "return ''" << QVariant(QString(""));
    QTest::addRow("nil") << "return nil" << QVariant();
}

void tst_Eval::scalars()
{
    QFETCH(QString, chunk);
    QFETCH(QVariant, expected);
    auto isle = QIsle::spawn();
    const QVariant result = isle->eval(chunk);
    QCOMPARE(result.typeId(), expected.typeId());
    QCOMPARE(result, expected);
}

void tst_Eval::nothingReturnedIsNull()
{
    auto isle = QIsle::spawn();
    const QVariant result = isle->eval(QStringLiteral("local x = 1"));
    QVERIFY(!result.isValid());
}

void tst_Eval::firstOfManyResults()
{
    auto isle = QIsle::spawn();
    QCOMPARE(isle->eval(QStringLiteral("return 1, 2, 3")), QVariant(qlonglong(1)));
}

void tst_Eval::stateKeptAcrossRequests()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("counter = 10"));
    isle->eval(QStringLiteral("counter = counter + 5"));
    QCOMPARE(isle->eval(QStringLiteral("return counter")), QVariant(qlonglong(15)));
}

void tst_Eval::spawnEvalFuture()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> future = isle->spawnEval(QStringLiteral("return 6 * 7"));
    QVERIFY(future.isValid());
    QTRY_VERIFY_WITH_TIMEOUT(future.isFinished(), 5000);
    QVERIFY(!future.isCanceled());
    QCOMPARE(future.result(), QVariant(qlonglong(42)));
    QCOMPARE(future.resultCount(), 1);
}

void tst_Eval::initSetsGlobals()
{
    auto isle = QIsle::spawn([](lua_State *L) {
        lua_pushinteger(L, 99);
        lua_setglobal(L, "answer");
        luaL_dostring(L, "function twice(x) return 2 * x end");
    });
    QCOMPARE(isle->eval(QStringLiteral("return twice(answer)")), QVariant(qlonglong(198)));
}

void tst_Eval::initLuaErrorIsInit()
{
    try {
        auto isle = QIsle::spawn([](lua_State *L) { luaL_error(L, "init refused"); });
        QFAIL("spawn should have thrown");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Init);
        QVERIFY2(e.message().contains(QStringLiteral("init refused")), qPrintable(e.message()));
    }
}

void tst_Eval::initThrowIsInit()
{
    try {
        auto isle = QIsle::spawn([](lua_State *) { throw std::runtime_error("no config"); });
        QFAIL("spawn should have thrown");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Init);
        QVERIFY2(e.message().contains(QStringLiteral("no config")), qPrintable(e.message()));
    }
}

void tst_Eval::bytecodeRefused()
{
    auto isle = QIsle::spawn();
    // A chunk starting with Lua's binary signature is refused by eval ...
    try {
        isle->eval(QStringLiteral("\x1bLua"));
        QFAIL("a binary chunk must not load");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Syntax);
    }
    // ... and by load() inside scripts.
    const QVariant r = isle->eval(QStringLiteral(
            "local f, err = load('\\27Lua') return f == nil and err"));
    QVERIFY2(r.toString().contains(QStringLiteral("binary")), qPrintable(r.toString()));
}

// The VM's allocator keeps freed small blocks for reuse, by size class
// (issue 18): blocks that grow and shrink across the classes, reused many
// times over, keep their contents, and the bytes counted come back exactly.
// Run under valgrind in CI (scripts/ci-valgrind.sh).
void tst_Eval::allocationChurnKeepsValues()
{
    QIsleOptions options;
    options.memoryLimit = 256 * 1024 * 1024; // counted, so the count is checked too
    auto isle = QIsle::spawn({}, options);
    isle->eval(QStringLiteral("collectgarbage()"));
    const qsizetype before = isle->usedMemory();
    const QVariant ok = isle->eval(QStringLiteral(R"(
        local keep = {}
        local function make(n)
            local t = {}
            for i = 1, n % 11 do -- the array part grows through every small size
                t[i] = string.rep(string.char(64 + i), n % 80 + 1)
            end
            t.name = 'k' .. n
            return t
        end
        local function check(t, n)
            for i = 1, n % 11 do
                if t[i] ~= string.rep(string.char(64 + i), n % 80 + 1) then return false end
            end
            return t.name == 'k' .. n
        end
        for round = 1, 40 do
            for n = 1, 200 do
                local t = make(n)
                if not check(t, n) then return 'made ' .. n end
                keep[(round * 200 + n) % 97 + 1] = {t, n}
                while #t > 0 do t[#t] = nil end -- and shrinks back
            end
            for _, kept in pairs(keep) do
                local t, n = kept[1], kept[2]
                if t.name ~= 'k' .. n then return 'kept ' .. n end
            end
            collectgarbage('step')
        end
        keep = nil
        return true
    )"));
    QCOMPARE(ok, QVariant(true));
    isle->eval(QStringLiteral("collectgarbage() collectgarbage()"));
    // Lua's own bookkeeping (string table, the stack) may differ a little.
    QVERIFY2(qAbs(isle->usedMemory() - before) < 16 * 1024,
             qPrintable(QStringLiteral("%1 bytes before, %2 after").arg(before).arg(isle->usedMemory())));
    isle->shutdown();
    QCOMPARE(isle->usedMemory(), 0);
}

// The objects the libraries made at spawn (packed in one block, see
// Allocator::beginStartup) grown, shrunk, replaced and collected like any
// other: the library tables rehash, their functions and names are dropped
// and made again, _G is refilled; values stay, a second round holds no
// more than the first, and every counted byte goes with the VM.
void tst_Eval::startupObjectsGrowShrinkAndGo_data()
{
    QTest::addColumn<qsizetype>("memoryLimit"); // 0: spawn() does not wait; else it does
    QTest::newRow("no limit") << qsizetype(0);
    QTest::newRow("limit") << qsizetype(64 * 1024 * 1024);
}

void tst_Eval::startupObjectsGrowShrinkAndGo()
{
    QFETCH(qsizetype, memoryLimit);
    QIsleOptions options;
    options.memoryLimit = memoryLimit;
    auto isle = QIsle::spawn({}, options);
    const QString script = QStringLiteral(R"(
        local saved = {}
        for _, name in ipairs({'string', 'table', 'math', 'os', 'io', 'utf8', 'coroutine'}) do
            local lib = _G[name]
            local copy = {}
            for k, v in pairs(lib) do copy[k] = v end
            saved[name] = copy
            for i = 1, 300 do lib['extra' .. i] = i end          -- grows: rehash
            for i = 1, 300 do lib['extra' .. i] = nil end
            for k in pairs(copy) do lib[k] = nil end             -- every startup slot freed
            collectgarbage()
            for k, v in pairs(copy) do lib[k] = v end            -- and made again
        end
        local globals, G, next_, collect, rawset_ = {}, _G, next, collectgarbage, rawset
        for k, v in pairs(G) do globals[k] = v end
        for k in next_, globals do G[k] = nil end
        collect()
        for k, v in next_, globals do rawset_(G, k, v) end
        saved = nil globals = nil
        collectgarbage()
        return string.format('%d %s %d', math.floor(2.5), ('ok'):upper(), #table.concat({1, 2, 3}))
            .. tostring(coroutine.wrap(function() return 1 end)() == 1)
    )");
    QCOMPARE(isle->eval(script).toString(), QStringLiteral("2 OK 3true"));
    isle->eval(QStringLiteral("collectgarbage() collectgarbage()"));
    const qsizetype once = isle->usedMemory(); // the grown tables keep their size (Lua shrinks on rehash)
    QCOMPARE(isle->eval(script).toString(), QStringLiteral("2 OK 3true"));
    // string's 17 functions, no extras left
    QCOMPARE(isle->eval(QStringLiteral("local n = 0 for _ in pairs(string) do n = n + 1 end return n")).toInt(), 17);
    // A library gone for good: its table, its names (only it used them) freed.
    QCOMPARE(isle->eval(QStringLiteral("utf8 = nil package.loaded.utf8 = nil collectgarbage() "
                                       "return #string.rep('ab', 3) .. type(utf8)")).toString(),
             QStringLiteral("6nil"));
    isle->eval(QStringLiteral("collectgarbage() collectgarbage()"));
    QVERIFY2(qAbs(isle->usedMemory() - once) < 16 * 1024,
             qPrintable(QStringLiteral("%1 bytes after one run, %2 after two").arg(once).arg(isle->usedMemory())));
    isle->shutdown();
    QCOMPARE(isle->usedMemory(), 0);
}

QTEST_GUILESS_MAIN(tst_Eval)
#include "tst_eval.moc"
