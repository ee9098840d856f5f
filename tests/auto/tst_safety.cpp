// Safety limits: library presets, no bytecode, the cancel hook, memory limit,
// timeouts, maxPending, hostile scripts, stuck finalizers, host functions
// that see a stop.
#include <QIsle/QIsle>

#include <QtCore/QSemaphore>
#include <QtTest/QtTest>

#include <QIsle/QIsleLua>

#include <atomic>
#include <string>

using Kind = QIsleError::Kind;
using namespace std::chrono_literals;
Q_DECLARE_METATYPE(QIsleOptions::Libraries)

namespace {

// Waits on `semaphore` with the stack below the caller's frame zeroed, where
// the frames of a call that returned were; true when nothing wrote there
// meanwhile. Zeros, so that a stray write there (a QVariant assigned to)
// changes them instead of crashing on what it took for a value.
Q_NEVER_INLINE bool waitOnZeroedStack(QSemaphore &semaphore)
{
    volatile unsigned char zeroed[16384];
    for (auto &byte : zeroed)
        byte = 0;
    semaphore.acquire();
    for (const auto &byte : zeroed) {
        if (byte != 0)
            return false;
    }
    return true;
}

// The error a future ended with, or nullopt when it did not fail.
std::optional<QIsleError> errorOf(QFuture<QVariant> future)
{
    try {
        future.waitForFinished();
    } catch (const QIsleError &e) {
        return e;
    }
    return std::nullopt;
}

std::optional<QIsleError> evalError(QIsle &isle, const QString &chunk)
{
    try {
        isle.eval(chunk);
    } catch (const QIsleError &e) {
        return e;
    }
    return std::nullopt;
}

// Real bytecode, made by the host (scripts cannot: string.dump is refused).
QByteArray bytecodeOf(const char *source)
{
    lua_State *L = luaL_newstate();
    luaL_loadstring(L, source);
    std::string out;
    lua_dump(L, [](lua_State *, const void *p, size_t size, void *ud) {
        static_cast<std::string *>(ud)->append(static_cast<const char *>(p), size);
        return 0;
    }, &out, 0);
    lua_close(L);
    return QByteArray(out.data(), qsizetype(out.size()));
}

} // namespace

class tst_Safety : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void presetGlobals_data();
    void presetGlobals();
    void osExitIsRefused_data();
    void osExitIsRefused();
    void binaryChunksNeverLoad_data();
    void binaryChunksNeverLoad();
    void evalRefusesBytecode();
    void requireLoadsTextModules();
    void sethookCannotStopCancel_data();
    void sethookCannotStopCancel();
    void memoryLimit_data();
    void memoryLimit();
    void memoryErrorIsCatchable();
    void memoryHeldByGlobals();
    void memoryLimitTooSmallForInit();
    void usedMemory();
    void timeoutKind_data();
    void timeoutKind();
    void perRequestTimeout();
    void busyPastMaxPending();
    void hostileInputs_data();
    void hostileInputs();
    void patternsKeepLuaResults_data();
    void patternsKeepLuaResults();
    void patternsAreCancellable();
    void hostFunctionSeesCancel();
    void hostFunctionSeesTimeout();
    void hostFunctionParksWhileSuspended();
    void helpersOffTheLuaThread();
    void blockingCallOfAnAbandonedVm();
    // Last: each row leaves an abandoned thread spinning.
    void uninterruptibleCodeIsAbandoned_data();
    void uninterruptibleCodeIsAbandoned();
};

void tst_Safety::presetGlobals_data()
{
    QTest::addColumn<QIsleOptions::Libraries>("libraries");
    QTest::addColumn<QString>("name");
    QTest::addColumn<bool>("present");
    const struct { const char *preset; QIsleOptions::Libraries libraries; } presets[] = {
        {"default", QIsleOptions::DefaultLibraries},
        {"sandbox", QIsleOptions::SandboxLibraries},
        {"all", QIsleOptions::AllLibraries},
    };
    // Every global the presets differ in, plus what all of them share.
    const char *shared[] = {"print", "pairs", "pcall", "xpcall", "error", "load", "select", "tostring",
                            "setmetatable", "collectgarbage", "coroutine", "table", "string", "utf8",
                            "math", "isle"};
    const char *fileAccess[] = {"io", "os", "package", "require", "dofile", "loadfile"};
    for (const auto &p : presets) {
        for (const char *name : shared)
            QTest::addRow("%s:%s", p.preset, name) << p.libraries << QString::fromLatin1(name) << true;
        const bool files = p.libraries != QIsleOptions::SandboxLibraries;
        for (const char *name : fileAccess)
            QTest::addRow("%s:%s", p.preset, name) << p.libraries << QString::fromLatin1(name) << files;
        QTest::addRow("%s:debug", p.preset)
                << p.libraries << QStringLiteral("debug") << (p.libraries == QIsleOptions::AllLibraries);
        // Never present, whatever the preset.
        QTest::addRow("%s:package.loadlib", p.preset) << p.libraries << QStringLiteral("package and package.loadlib") << false;
        QTest::addRow("%s:C searchers", p.preset)
                << p.libraries << QStringLiteral("package and (package.searchers[3] or package.searchers[4])") << false;
    }
}

void tst_Safety::presetGlobals()
{
    QFETCH(QIsleOptions::Libraries, libraries);
    QFETCH(QString, name);
    QFETCH(bool, present);
    QIsleOptions options;
    options.libraries = libraries;
    auto isle = QIsle::spawn({}, options);
    QCOMPARE(isle->eval(QStringLiteral("return (%1) ~= nil").arg(name)).toBool(), present);
}

void tst_Safety::osExitIsRefused_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addRow("os.exit()") << "os.exit()";
    QTest::addRow("os.exit(true, true)") << "os.exit(true, true)";
    QTest::addRow("pcall") << "local ok, e = pcall(os.exit, 3) assert(not ok) error(e, 0)";
    QTest::addRow("from a coroutine") << "coroutine.wrap(function() os.exit(1) end)()";
}

void tst_Safety::osExitIsRefused()
{
    QFETCH(QString, chunk);
    QIsleOptions options;
    options.libraries = QIsleOptions::AllLibraries;
    auto isle = QIsle::spawn({}, options);
    const auto error = evalError(*isle, chunk);
    QVERIFY(error);
    QCOMPARE(error->kind(), Kind::Runtime);
    QVERIFY2(error->message().contains(QStringLiteral("os.exit is disabled")), qPrintable(error->message()));
    QCOMPARE(isle->eval(QStringLiteral("return 'alive'")), QVariant(QStringLiteral("alive")));
}

void tst_Safety::binaryChunksNeverLoad_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QString>("expected"); // in the message the chunk returns
    const QString binary = QStringLiteral("attempt to load a binary chunk");
    QTest::addRow("load(string)") << "local f, e = load(bytecode) return e" << binary;
    QTest::addRow("load(string, name, 'b')") << "local f, e = load(bytecode, 'x', 'b') return e" << binary;
    QTest::addRow("load(string, name, 'bt', env)") << "local f, e = load(bytecode, 'x', 'bt', {}) return e" << binary;
    QTest::addRow("load(reader)")
            << "local done = false\n"
               "local f, e = load(function() if done then return nil end done = true return bytecode end)\n"
               "return e"
            << binary;
    QTest::addRow("string.dump") << "local ok, e = pcall(string.dump, function() end) return e"
                                 << "string.dump is disabled";
    QTest::addRow("load(string.dump(f))") << "local ok, e = pcall(function() return load(string.dump(print)) end) return e"
                                          << "string.dump is disabled";
    QTest::addRow("loadfile") << "local f, e = loadfile(dir .. '/evil.luac') return e" << binary;
    QTest::addRow("dofile") << "local ok, e = pcall(dofile, dir .. '/evil.luac') return e" << binary;
    QTest::addRow("require") << "package.path = dir .. '/?.luac' local ok, e = pcall(require, 'evil') return e"
                             << binary;
    // Text-only modes refuse it with Lua's own message; modes that would let
    // it through get Lua's refusal for mode 't' (lua5.4 would load it).
    QTest::addRow("load(string, name, 't')") << "local f, e = load(bytecode, 'x', 't') return e"
                                             << "attempt to load a binary chunk (mode is 't')";
    QTest::addRow("load(string, name, 'x')") << "local f, e = load(bytecode, 'x', 'x') return e"
                                             << "attempt to load a binary chunk (mode is 'x')";
    QTest::addRow("load(reader, name, 'b')")
            << "local done = false\n"
               "local f, e = load(function() if done then return nil end done = true return bytecode end, 'x', 'b')\n"
               "return e"
            << "attempt to load a binary chunk (mode is 't')";
    QTest::addRow("load(reader, one byte at a time)")
            << "local i = 0\n"
               "local f, e = load(function() i = i + 1 return bytecode:sub(i, i) ~= '' and bytecode:sub(i, i) or nil end)\n"
               "return e"
            << "attempt to load a binary chunk (mode is 't')";
    QTest::addRow("loadfile, mode 'b'") << "local f, e = loadfile(dir .. '/evil.luac', 'b') return e"
                                        << "attempt to load a binary chunk (mode is 't')";
    QTest::addRow("loadfile, mode 'bt'") << "local f, e = loadfile(dir .. '/evil.luac', 'bt') return e"
                                         << "attempt to load a binary chunk (mode is 't')";
    QTest::addRow("loadfile, mode 't'") << "local f, e = loadfile(dir .. '/evil.luac', 't') return e"
                                        << "attempt to load a binary chunk (mode is 't')";
    // Lua's own load must not be one debug.getupvalue away.
    QTest::addRow("debug.getupvalue(load)") << "return tostring((debug.getupvalue(load, 1)))" << "nil";
    // Nor the unguarded pattern functions, nor Lua's coroutine.resume.
    QTest::addRow("debug.getupvalue(string.find)")
            << "return tostring((debug.getupvalue(string.find, 1))) .. tostring((debug.getupvalue(string.gsub, 1)))"
            << "nilnil";
    QTest::addRow("debug.getupvalue(coroutine.resume)")
            << "return tostring((debug.getupvalue(coroutine.resume, 1))) .. tostring((debug.getupvalue(coroutine.close, 1)))"
            << "nilnil";
    QTest::addRow("package.loadlib") << "return tostring(package.loadlib)" << "nil";
}

void tst_Safety::binaryChunksNeverLoad()
{
    QFETCH(QString, chunk);
    QFETCH(QString, expected);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QByteArray bytecode = bytecodeOf("sideEffect = true return 42");
    QFile file(dir.filePath(QStringLiteral("evil.luac")));
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(bytecode);
    file.close();

    QIsleOptions options;
    options.libraries = QIsleOptions::AllLibraries;
    auto isle = QIsle::spawn([&](lua_State *L) {
        lua_pushlstring(L, bytecode.constData(), size_t(bytecode.size()));
        lua_setglobal(L, "bytecode");
        lua_pushstring(L, QFile::encodeName(dir.path()).constData());
        lua_setglobal(L, "dir");
    }, options);
    const QString message = isle->eval(chunk).toString();
    QVERIFY2(message.contains(expected), qPrintable(message));
    QCOMPARE(isle->eval(QStringLiteral("return sideEffect")), QVariant());
}

void tst_Safety::evalRefusesBytecode()
{
    auto isle = QIsle::spawn();
    const auto error = evalError(*isle, QString::fromLatin1(bytecodeOf("sideEffect = true")));
    QVERIFY(error);
    QCOMPARE(error->kind(), Kind::Syntax);
    QCOMPARE(isle->eval(QStringLiteral("return sideEffect")), QVariant());
}

void tst_Safety::requireLoadsTextModules()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QFile file(dir.filePath(QStringLiteral("good.lua")));
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("local name, path = ... return { answer = 42, name = name, found = path ~= nil }");
    file.close();
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("package.path = %1 .. '/?.lua'")
                       .arg(QStringLiteral("'%1'").arg(dir.path())));
    QCOMPARE(isle->eval(QStringLiteral("return require('good').answer")), QVariant(qlonglong(42)));
    QCOMPARE(isle->eval(QStringLiteral("return require('good').found")), QVariant(true));
    const auto missing = evalError(*isle, QStringLiteral("require('nosuchmodule')"));
    QVERIFY(missing);
    QVERIFY2(missing->message().contains(QStringLiteral("no file")), qPrintable(missing->message()));
    // The C searchers are gone: lua5.4's message would go on with the
    // package.cpath files it tried; this one ends with the Lua files.
    QVERIFY2(missing->message().endsWith(QStringLiteral("/nosuchmodule.lua'")), qPrintable(missing->message()));
    QVERIFY2(!missing->message().contains(QStringLiteral(".so'")), qPrintable(missing->message()));
}

void tst_Safety::sethookCannotStopCancel_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addRow("sethook()") << "pcall(debug.sethook) while true do end";
    QTest::addRow("sethook(f, '', 0)") << "pcall(debug.sethook, function() end, '', 0) while true do end";
    QTest::addRow("sethook(co)")
            << "local co = coroutine.create(function() while true do end end)\n"
               "pcall(debug.sethook, co) coroutine.resume(co)";
    QTest::addRow("replace debug.sethook") << "debug.sethook = function() end debug.sethook() while true do end";
    QTest::addRow("gethook is harmless") << "local h = debug.gethook() while true do end";
}

void tst_Safety::sethookCannotStopCancel()
{
    QFETCH(QString, chunk);
    QIsleOptions options;
    options.libraries = QIsleOptions::AllLibraries;
    auto isle = QIsle::spawn({}, options);
    QCOMPARE(isle->eval(QStringLiteral("return select(2, pcall(debug.sethook))")).toString(),
             QStringLiteral("debug.sethook is disabled in QIsle"));
    QFuture<QVariant> f = isle->spawnEval(chunk);
    QThread::msleep(30);
    QVERIFY(!f.isFinished());
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return 2 + 2")), QVariant(qlonglong(4)));
}

void tst_Safety::memoryLimit_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addRow("table growth") << "local t = {} for i = 1, 1e9 do t[i] = i end";
    QTest::addRow("many tables") << "local t = {} while true do t[#t + 1] = {} end";
    QTest::addRow("string doubling") << "local s = 'x' while true do s = s .. s end";
    QTest::addRow("string.rep 64 MiB") << "return #string.rep('x', 64 * 1024 * 1024)";
    QTest::addRow("string.rep 1 GiB") << "return #string.rep('x', 2^30)";
    QTest::addRow("string.rep 1 GiB with separator") << "return #string.rep('x', 2^29, ',')";
    QTest::addRow("closures") << "local t = {} while true do t[#t + 1] = function() return t end end";
    QTest::addRow("coroutines") << "local t = {} while true do t[#t + 1] = coroutine.create(print) end";
    QTest::addRow("table.concat") << "local t = {} for i = 1, 1e7 do t[i] = 'abcdefgh' .. i end return #table.concat(t)";
    QTest::addRow("gsub doubling") << "local s = 'x' for i = 1, 40 do s = s:gsub('x', 'xx') end";
    QTest::addRow("huge error message") << "error(string.rep('e', 2^30))";
}

void tst_Safety::memoryLimit()
{
    QFETCH(QString, chunk);
    QIsleOptions options;
    options.memoryLimit = 8 * 1024 * 1024;
    auto isle = QIsle::spawn({}, options);
    const auto error = evalError(*isle, chunk);
    QVERIFY(error);
    QCOMPARE(error->kind(), Kind::Memory);
    QVERIFY(isle->usedMemory() <= options.memoryLimit);
    // The VM serves the next request, with the memory back.
    QCOMPARE(isle->eval(QStringLiteral("return ('ok'):rep(2)")), QVariant(QStringLiteral("okok")));
    QVERIFY2(isle->usedMemory() < options.memoryLimit / 2, qPrintable(QString::number(isle->usedMemory())));
}

void tst_Safety::memoryErrorIsCatchable()
{
    QIsleOptions options;
    options.memoryLimit = 4 * 1024 * 1024;
    auto isle = QIsle::spawn({}, options);
    QCOMPARE(isle->eval(QStringLiteral(
                     "local ok, e = pcall(function() local s = 'x' while true do s = s .. s end end)\n"
                     "return tostring(ok) .. ': ' .. e")),
             QVariant(QStringLiteral("false: not enough memory")));
}

void tst_Safety::memoryHeldByGlobals()
{
    // Memory a script keeps (a global) stays used: requests that need more
    // fail with Memory, never anything worse, until the host frees it.
    QIsleOptions options;
    options.memoryLimit = 4 * 1024 * 1024;
    auto isle = QIsle::spawn({}, options);
    const auto fill = evalError(*isle, QStringLiteral("hog = {} while true do hog[#hog + 1] = {} end"));
    QVERIFY(fill);
    QCOMPARE(fill->kind(), Kind::Memory);
    // Errors raised near the limit: the message or the memory error, no crash.
    for (int i = 0; i < 20; ++i) {
        const auto error = evalError(*isle, QStringLiteral("error('boom ' .. string.rep('y', %1))").arg(i * 50));
        QVERIFY(error);
        QVERIFY2(error->kind() == Kind::Runtime || error->kind() == Kind::Memory, qPrintable(error->message()));
    }
    // exec needs no compiler: it frees the memory whatever is left.
    isle->exec([](lua_State *L) {
        lua_pushnil(L);
        lua_setglobal(L, "hog");
        lua_gc(L, LUA_GCCOLLECT);
        return QVariant();
    });
    QCOMPARE(isle->eval(QStringLiteral("return 6 * 7")), QVariant(qlonglong(42)));
}

void tst_Safety::memoryLimitTooSmallForInit()
{
    QIsleOptions options;
    options.memoryLimit = 2048; // not even the standard libraries fit
    try {
        auto isle = QIsle::spawn({}, options);
        QFAIL("expected Init");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), Kind::Init);
    }
}

void tst_Safety::usedMemory()
{
    QIsleOptions options;
    options.memoryLimit = 64 * 1024 * 1024;
    auto isle = QIsle::spawn({}, options);
    const qsizetype idle = isle->usedMemory();
    QVERIFY(idle > 0);
    QVERIFY(idle < 1024 * 1024);
    isle->eval(QStringLiteral("big = string.rep('x', 4 * 1024 * 1024)"));
    QVERIFY(isle->usedMemory() >= idle + 4 * 1024 * 1024);
    // Read from another thread while a script allocates: no lock needed.
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("local t = {} for i = 1, 1e5 do t[i] = {} end isle.sleep(5000)"));
    QTRY_VERIFY_WITH_TIMEOUT(isle->usedMemory() > idle + 4 * 1024 * 1024 + 1000000, 5000);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    isle->eval(QStringLiteral("big = nil collectgarbage()"));
    QVERIFY(isle->usedMemory() < idle + 1024 * 1024);
    isle->shutdown();
    QCOMPARE(isle->usedMemory(), 0);
}

void tst_Safety::timeoutKind_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addRow("loop") << "while true do end";
    QTest::addRow("isle.sleep") << "isle.sleep(60000)";
    QTest::addRow("pcall loop") << "while true do pcall(function() while true do end end) end";
    QTest::addRow("coroutine") << "coroutine.wrap(function() while true do end end)()";
}

void tst_Safety::timeoutKind()
{
    QFETCH(QString, chunk);
    QIsleOptions options;
    options.timeout = 100ms;
    auto isle = QIsle::spawn({}, options);
    QElapsedTimer timer;
    timer.start();
    const auto error = errorOf(isle->spawnEval(chunk));
    QVERIFY(error);
    QCOMPARE(error->kind(), Kind::Timeout); // not Cancelled
    QVERIFY(timer.elapsed() >= 95);
    QVERIFY(timer.elapsed() < 5000);
    QCOMPARE(isle->eval(QStringLiteral("return 'next'")), QVariant(QStringLiteral("next")));
}

void tst_Safety::perRequestTimeout()
{
    QIsleOptions options;
    options.timeout = 50ms;
    auto isle = QIsle::spawn({}, options);
    // 0: none, whatever the isle's default.
    QCOMPARE(isle->eval(QStringLiteral("isle.sleep(150) return 'slept'"), QIsleRequestOptions{0ms}),
             QVariant(QStringLiteral("slept")));
    // Its own, longer than the isle's.
    QCOMPARE(QIsle::waitFor(isle->spawnEval(QStringLiteral("isle.sleep(100) return 1"), QIsleRequestOptions{2000ms})),
             QVariant(qlonglong(1)));
    // -1 (the default): the isle's.
    auto error = errorOf(isle->spawnEval(QStringLiteral("isle.sleep(2000)"), QIsleRequestOptions{}));
    QVERIFY(error);
    QCOMPARE(error->kind(), Kind::Timeout);
    // Every overload.
    isle->eval(QStringLiteral("function spin() while true do end end"));
    error = errorOf(isle->spawnCall(QStringLiteral("spin"), {}, QIsleRequestOptions{20ms}));
    QVERIFY(error);
    QCOMPARE(error->kind(), Kind::Timeout);
    error = errorOf(isle->spawnExec([](lua_State *L) {
        luaL_dostring(L, "while true do end");
        return QVariant();
    }, QIsleRequestOptions{20ms}));
    QVERIFY(error);
    QCOMPARE(error->kind(), Kind::Timeout);
    try {
        isle->call(QStringLiteral("spin"), {}, QIsleRequestOptions{20ms});
        QFAIL("expected Timeout");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), Kind::Timeout);
    }
    QCOMPARE(isle->exec([](lua_State *) { return QVariant(7); }, QIsleRequestOptions{20ms}), QVariant(7));
}

void tst_Safety::busyPastMaxPending()
{
    QIsleOptions options;
    options.maxPending = 2;
    auto isle = QIsle::spawn({}, options);
    QFuture<QVariant> running = isle->spawnEval(QStringLiteral("while true do end"));
    QThread::msleep(30); // it left the queue: it runs
    QFuture<QVariant> a = isle->spawnEval(QStringLiteral("return 'a'"));
    QFuture<QVariant> b = isle->spawnEval(QStringLiteral("return 'b'"));
    QFuture<QVariant> refused = isle->spawnEval(QStringLiteral("refusedRan = true"));
    QVERIFY(refused.isFinished()); // at once, not queued
    auto error = errorOf(refused);
    QVERIFY(error);
    QCOMPARE(error->kind(), Kind::Busy);
    try {
        isle->eval(QStringLiteral("refusedRan = true"));
        QFAIL("expected Busy");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), Kind::Busy);
    }
    running.cancel();
    QCOMPARE(QIsle::waitFor(a), QVariant(QStringLiteral("a")));
    QCOMPARE(QIsle::waitFor(b), QVariant(QStringLiteral("b")));
    QCOMPARE(isle->eval(QStringLiteral("return refusedRan")), QVariant());
}

void tst_Safety::hostileInputs_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QString>("kinds");   // the kinds it may end with, '|'-separated
    QTest::addColumn<QString>("message"); // a part of it; empty: any
    // Keep in step with the README's table. The isle: memoryLimit 64 MiB,
    // timeout 1 s.
    QTest::addRow("unbounded recursion") << "local function f() return 1 + f() end return f()"
                                         << "Runtime|Memory" << ""; // stack overflow, or the limit first
    QTest::addRow("endless tail calls") << "local function f() return f() end return f()" << "Timeout" << "";
    QTest::addRow("deep pcall nesting") << "local function f() return pcall(f) end f() error('survived')"
                                        << "Runtime" << "survived";
    QTest::addRow("deep xpcall nesting") << "local function f() return xpcall(f, print) end f() error('survived')"
                                         << "Runtime" << "survived";
    QTest::addRow("deep coroutine nesting") << "local function f() return coroutine.wrap(f)() end return f()"
                                            << "Runtime" << "stack overflow";
    QTest::addRow("__index recursion") << "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x"
                                       << "Runtime" << "stack overflow";
    QTest::addRow("__tostring recursion")
            << "local t = setmetatable({}, {__tostring = function(t) return tostring(t) end}) return tostring(t)"
            << "Runtime" << "stack overflow";
    QTest::addRow("string.rep 2^40") << "return #string.rep('x', 2^40)" << "Runtime" << "too large";
    QTest::addRow("string.rep 2^62 with separator") << "return #string.rep('x', 2^62, ',')" << "Runtime" << "too large";
    QTest::addRow("string.rep 1 GiB") << "return #string.rep('x', 2^30)" << "Memory" << "";
    QTest::addRow("string.format %99999d") << "return string.format('%99999d', 1)" << "Runtime" << "invalid conversion";
    QTest::addRow("string.format huge %s") << "return #string.format('%s%s', string.rep('x', 2^25), string.rep('x', 2^25))"
                                           << "Memory" << "";
    QTest::addRow("table.unpack 1e8") << "return select('#', table.unpack({}, 1, 1e8))" << "Runtime" << "too many results";
    QTest::addRow("pattern with 40 captures") << "return ('a'):rep(100):find(('(a)'):rep(40))" << "Runtime"
                                              << "too many captures";
    QTest::addRow("pattern backtracking (find)") << "return ('a'):rep(40):find(('a*'):rep(40) .. 'b')" << "Timeout" << "";
    QTest::addRow("pattern backtracking (match)") << "return ('a'):rep(5000):match(('.-'):rep(8) .. 'b')" << "Timeout" << "";
    QTest::addRow("pattern backtracking (gmatch)")
            << "for x in ('a'):rep(40):gmatch(('a?'):rep(40) .. 'b') do end" << "Timeout" << "";
    QTest::addRow("pattern backtracking (gsub)") << "return (('a'):rep(40)):gsub(('a-'):rep(40) .. 'b', '')" << "Timeout" << "";
    QTest::addRow("pattern backtracking with captures")
            << "return ('a'):rep(40):match(('(a*)'):rep(30) .. '%1b')" << "Timeout" << "";
    QTest::addRow("pattern 300 items deep") << "return ('a'):rep(300):match(('a?'):rep(300) .. 'b')" << "Runtime"
                                            << "pattern too complex";
    QTest::addRow("chunk nested 1e6 deep") << QString(QStringLiteral("return ")).append(QString(1000000, QLatin1Char('(')))
                                           << "Runtime|Syntax" << "overflow";
    QTest::addRow("load nested 1e6 deep") << "return assert(load('return ' .. ('('):rep(1e6)))" << "Runtime" << "overflow";
    QTest::addRow("result nested 1e4 deep") << "local t = {} for i = 1, 1e4 do t = {t} end return t" << "Conversion" << "";
    QTest::addRow("cyclic result") << "local t = {} t[1] = t return t" << "Conversion" << "";
    QTest::addRow("garbage with GC stopped") << "collectgarbage('stop') while true do local t = {} end" << "Timeout" << "";
    QTest::addRow("error object with looping __tostring")
            << "error(setmetatable({}, {__tostring = function() while true do end end}))" << "Timeout" << "";
    QTest::addRow("error in __close") << "do local x <close> = setmetatable({}, {__close = function() error('c') end}) end"
                                      << "Runtime" << "c";
}

void tst_Safety::hostileInputs()
{
    QFETCH(QString, chunk);
    QFETCH(QString, kinds);
    QFETCH(QString, message);
    QIsleOptions options;
    options.memoryLimit = 64 * 1024 * 1024;
    options.timeout = 1000ms;
    auto isle = QIsle::spawn({}, options);
    // A row that must not end as Timeout gets time enough to reach its own
    // end also in slow (sanitizer) builds; the 1 s timeout is for the others.
    QIsleRequestOptions request;
    if (!kinds.split(QLatin1Char('|')).contains(QLatin1String("Timeout")))
        request.timeout = 8000ms;
    QFuture<QVariant> f = isle->spawnEval(chunk, request);
    // A hang fails here; the destructor then abandons the VM (logged).
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 10000);
    const auto error = errorOf(f);
    QVERIFY(error);
    const QString got = QIsleError::kindName(error->kind());
    QVERIFY2(kinds.split(QLatin1Char('|')).contains(got), qPrintable(QStringLiteral("%1: %2").arg(got, error->message())));
    QVERIFY2(error->message().contains(message), qPrintable(error->message()));
    QCOMPARE(isle->eval(QStringLiteral("return 'still here'")), QVariant(QStringLiteral("still here")));
}

void tst_Safety::patternsKeepLuaResults_data()
{
    QTest::addColumn<QString>("expression");
    // Long enough subjects that the guard probes before Lua's function runs.
    const char *cases[] = {
        "s:find('(b+)(c*)')", "s:find('b', -30)", "s:find('b', 1e6)", "s:find('%.', 1, true)", "s:find('a.-b', 3)",
        "s:match('^(a+)(.-)(%d*)$')", "s:match('()b()')", "s:match('%f[%w]%w+', 20)", "s:match('%b()')",
        "s:match('(a)(a)%2%1')", "s:match('[%a-]+x?$')", "s:match('[^a]+')", "s:match('[]a]+')",
        "s:gsub('a-b', '<%0>')", "s:gsub('(a*)', '%1-', 5)", "s:gsub('%w+', {ab = 'X'})",
        "s:gsub('(b)(c?)', function(b, c) return c .. b end)", "s:gsub('', '.')", "s:gsub('^a*', '')",
        "table.concat({(function() local t = {} for a, b in s:gmatch('(a+)(b*)') do t[#t + 1] = a .. '/' .. b end return table.unpack(t) end)()}, ',')",
        "table.concat({(function() local t = {} for w in s:gmatch('a*', 7) do t[#t + 1] = w end return table.unpack(t) end)()}, ',')",
        "select('#', s:find('zzz'))", "pcall(string.find, s, '(')", "pcall(string.match, s, '%')",
        "pcall(string.gsub, s, '(()', '')", "pcall(string.match, s, '%1')", "pcall(string.find, s, '[a')",
        "pcall(string.match, s, ('a?'):rep(300))", "pcall(string.find, nil, 'a')", "pcall(string.gsub, s, 'a', true)",
    };
    QTest::addColumn<int>("dummy");
    for (const char *c : cases)
        QTest::addRow("%s", c) << QString::fromLatin1(c) << 0;
}

void tst_Safety::patternsKeepLuaResults()
{
    QFETCH(QString, expression);
    const QString setup = QStringLiteral("s = ('aab(c)d 12 ab.x'):rep(40) .. 'aaab' ");
    // Results as a string: every value, tostring'ed, joined.
    const QString chunk = setup + QStringLiteral(
            "local r = table.pack(%1) for i = 1, r.n do r[i] = tostring(r[i]) end "
            "return r.n .. ':' .. table.concat(r, '|')").arg(expression);
    auto isle = QIsle::spawn();
    const QString guarded = isle->eval(chunk).toString();
    // Plain Lua, no guard.
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    const QByteArray code = chunk.toUtf8();
    QVERIFY(luaL_dostring(L, code.constData()) == LUA_OK);
    const QString plain = QString::fromUtf8(lua_tostring(L, -1));
    lua_close(L);
    QCOMPARE(guarded, plain);
}

void tst_Safety::patternsAreCancellable()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("return ('a'):rep(40):find(('a*'):rep(40) .. 'b')"));
    QThread::msleep(50);
    QVERIFY(!f.isFinished());
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return ('abc'):find('b')")), QVariant(qlonglong(2)));
}

void tst_Safety::hostFunctionSeesCancel()
{
    auto isle = QIsle::spawn();
    std::atomic<bool> sawStop{false};
    std::atomic<int> rounds{0};
    isle->registerFunction(QStringLiteral("work"), [&](const QVariantList &) {
        QElapsedTimer timer;
        timer.start();
        while (timer.elapsed() < 10000) {
            if (QIsle::checkpoint()) {
                sawStop = true;
                break;
            }
            ++rounds;
            QThread::usleep(200);
        }
        return QVariant(QStringLiteral("partial"));
    });
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("return work()"));
    QTRY_VERIFY_WITH_TIMEOUT(rounds > 10, 5000);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(sawStop);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return 1")), QVariant(qlonglong(1)));
}

void tst_Safety::hostFunctionSeesTimeout()
{
    auto isle = QIsle::spawn();
    isle->registerFunction(QStringLiteral("work"), [](const QVariantList &) {
        QElapsedTimer timer;
        timer.start();
        while (timer.elapsed() < 10000 && !QIsle::currentRequestStopping())
            QThread::usleep(200);
        return QVariant(QStringLiteral("partial"));
    });
    // The stop stays the outcome though work() returns normally and no Lua
    // code runs after it.
    const auto error = errorOf(isle->spawnEval(QStringLiteral("return work()"), QIsleRequestOptions{50ms}));
    QVERIFY(error);
    QCOMPARE(error->kind(), Kind::Timeout);
    QCOMPARE(isle->eval(QStringLiteral("return work ~= nil")), QVariant(true));
}

void tst_Safety::hostFunctionParksWhileSuspended()
{
    auto isle = QIsle::spawn();
    std::atomic<int> rounds{0};
    isle->registerFunction(QStringLiteral("work"), [&](const QVariantList &) {
        QElapsedTimer timer;
        timer.start();
        while (timer.elapsed() < 20000 && !QIsle::checkpoint()) {
            ++rounds;
            QThread::usleep(200);
        }
        return QVariant();
    });
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("work()"));
    QTRY_VERIFY_WITH_TIMEOUT(rounds > 10, 5000);
    f.suspend();
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 5000);
    const int parked = rounds;
    QThread::msleep(50);
    QCOMPARE(int(rounds), parked);
    f.resume();
    QTRY_VERIFY_WITH_TIMEOUT(rounds > parked + 10, 5000);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
}

void tst_Safety::helpersOffTheLuaThread()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("while true do end"));
    f.cancel();
    QVERIFY(!QIsle::currentRequestStopping());
    QVERIFY(!QIsle::checkpoint());
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    // On the Lua thread, outside any host call that is stopping.
    QCOMPARE(isle->exec([](lua_State *) { return QVariant(QIsle::currentRequestStopping()); }), QVariant(false));
}

void tst_Safety::blockingCallOfAnAbandonedVm()
{
    // A blocking call's value is handed to the waiting caller straight, not
    // through its future. When its VM is abandoned, the caller returns
    // (Cancelled) while the call still runs; the value the abandoned thread
    // makes later must not reach the caller's returned frame. The caller
    // stays alive meanwhile, its stack in use: a write there is a race the
    // sanitizers see, and one the zeros it puts there show.
    QIsleOptions options;
    options.shutdownTimeout = 200ms;
    auto isle = QIsle::spawn({}, options);
    QIsle *raw = isle.get();
    // Shared: the abandoned thread outlives this test's frame.
    auto hold = std::make_shared<QSemaphore>();
    auto entered = std::make_shared<std::atomic<bool>>(false);
    auto returning = std::make_shared<std::atomic<bool>>(false);
    std::atomic<int> kind{-1};
    std::atomic<bool> stackIntact{false};
    QSemaphore callerReturned;
    QSemaphore callerMayEnd;
    std::unique_ptr<QThread> caller(QThread::create([&] {
        try {
            // C++ on the Lua thread: no stop reaches it, and it completes.
            raw->exec([hold, entered, returning](lua_State *) {
                *entered = true;
                hold->acquire();
                *returning = true;
                return QVariant(QVariantMap{{QStringLiteral("answer"), 42}});
            });
        } catch (const QIsleError &e) {
            kind = int(e.kind());
        }
        callerReturned.release();
        stackIntact = waitOnZeroedStack(callerMayEnd);
    }));
    caller->start();
    const auto cleanup = qScopeGuard([&] {
        hold->release();
        callerMayEnd.release();
        caller->wait(5000);
    });
    QTRY_VERIFY_WITH_TIMEOUT(entered->load(), 5000);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("abandoning")));
    isle.reset();
    QVERIFY(callerReturned.tryAcquire(1, 5000));
    QCOMPARE(kind.load(), int(Kind::Cancelled));
    hold->release(); // the abandoned thread completes the call and settles it
    QTRY_VERIFY_WITH_TIMEOUT(returning->load(), 5000);
    QThread::msleep(50);
    callerMayEnd.release();
    QVERIFY(caller->wait(5000));
    QVERIFY(stackIntact.load());
}

void tst_Safety::uninterruptibleCodeIsAbandoned_data()
{
    // C code and finalizers run without hook checks: neither cancel() nor a
    // timeout reaches them. Only the destructor's bound is left. (Pattern
    // searches are guarded, see patternsAreCancellable; a plain find of a
    // huge needle is not, but how long it takes depends on the libc's
    // memcmp -- sanitizers replace it -- so it is no reliable row here.)
    QTest::addColumn<QString>("chunk");
    QTest::addRow("looping __gc") << "setmetatable({}, { __gc = function() while true do end end }) collectgarbage()";
}

void tst_Safety::uninterruptibleCodeIsAbandoned()
{
    QFETCH(QString, chunk);
    QIsleOptions options;
    options.shutdownTimeout = 200ms;
    // No timeout: in signal mode a deadline passed between the two C calls
    // of a chunk is seen at once, which would stop it before the long one.
    auto isle = QIsle::spawn({}, options);
    // The worker takes the chunk and the request behind it in one batch
    // (the exec holds the Lua thread meanwhile): the one behind waits in
    // the worker, not in the queue, when the VM is abandoned.
    QSemaphore hold;
    QFuture<QVariant> holder = isle->spawnExec([&hold](lua_State *) {
        hold.acquire();
        return QVariant();
    });
    QFuture<QVariant> f = isle->spawnEval(chunk);
    QFuture<QVariant> behind = isle->spawnEval(QStringLiteral("return 1"));
    hold.release();
    QVERIFY(QIsle::waitFor(holder).isNull()); // bounded: the exec returns at once
    // Long enough for the chunk to be inside its one long C call: in signal
    // mode a cancel that comes earlier is seen between calls.
    QThread::msleep(500);
    f.cancel();
    QThread::msleep(50);
    QVERIFY2(!f.isFinished(), "no longer uninterruptible: move the row to hostileInputs");
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("abandoning")));
    QElapsedTimer timer;
    timer.start();
    isle.reset();
    QVERIFY2(timer.elapsed() < 1000, qPrintable(QString::number(timer.elapsed())));
    // Even the abandoned request's future is finished (canceled), and the
    // one that was to run after it.
    QVERIFY(f.isFinished());
    QVERIFY(f.isCanceled());
    QVERIFY(behind.isFinished());
    QVERIFY(behind.isCanceled());
}

QTEST_GUILESS_MAIN(tst_Safety)
#include "tst_safety.moc"
