// QIsleRequestOptions::chunkName: Lua's load() convention in error strings,
// tracebacks, debug.getinfo and QIsleError's message/line.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

namespace {

QIsleRequestOptions named(const QString &name)
{
    QIsleRequestOptions options;
    options.chunkName = name;
    return options;
}

} // namespace

class tst_ChunkName : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void errorStringsScriptsSee_data();
    void errorStringsScriptsSee();
    void debugGetinfoSource_data();
    void debugGetinfoSource();
    void uncaughtErrorDropsOwnPrefix_data();
    void uncaughtErrorDropsOwnPrefix();
    void syntaxErrorDropsOwnPrefix();
    void otherChunksKeepTheirPrefix();
    void callKeepsDefiningChunksPrefix();
    void spawnEvalTakesTheName();
    void twoScriptsToldApart();
};

void tst_ChunkName::errorStringsScriptsSee_data()
{
    QTest::addColumn<QString>("chunkName");
    QTest::addColumn<QString>("expected");
    QTest::addRow("default") << QString() << "eval:2: boom";
    QTest::addRow("file") << "@scripts/report.lua" << "scripts/report.lua:2: boom";
    QTest::addRow("as-is") << "=macro" << "macro:2: boom";
    QTest::addRow("source-text") << "local x" << "[string \"local x\"]:2: boom";
    QTest::addRow("source-multiline") << "first\nsecond" << "[string \"first...\"]:2: boom";
}

void tst_ChunkName::errorStringsScriptsSee()
{
    QFETCH(QString, chunkName);
    QFETCH(QString, expected);
    auto isle = QIsle::spawn();
    const QVariant message = isle->eval(QStringLiteral("local ok, e = pcall(function()\n error('boom') end)\nreturn e"),
                                        named(chunkName));
    QCOMPARE(message.toString(), expected);
}

void tst_ChunkName::debugGetinfoSource_data()
{
    QTest::addColumn<QString>("chunkName");
    QTest::addColumn<QString>("source");
    QTest::addColumn<QString>("shortSrc");
    QTest::addRow("default") << QString() << "=eval" << "eval";
    QTest::addRow("file") << "@scripts/a.lua" << "@scripts/a.lua" << "scripts/a.lua";
    QTest::addRow("as-is") << "=console:3" << "=console:3" << "console:3";
}

void tst_ChunkName::debugGetinfoSource()
{
    QFETCH(QString, chunkName);
    QFETCH(QString, source);
    QFETCH(QString, shortSrc);
    QIsleOptions options;
    options.libraries = QIsleOptions::AllLibraries;
    auto isle = QIsle::spawn({}, options);
    const QVariantList info = isle->eval(QStringLiteral("local i = debug.getinfo(1, 'S') return {i.source, i.short_src}"),
                                         named(chunkName)).toList();
    QCOMPARE(info.value(0).toString(), source);
    QCOMPARE(info.value(1).toString(), shortSrc);
}

void tst_ChunkName::uncaughtErrorDropsOwnPrefix_data()
{
    QTest::addColumn<QString>("chunkName");
    QTest::addColumn<QString>("inTraceback");
    QTest::addRow("default") << QString() << "eval:3:";
    QTest::addRow("file") << "@scripts/a.lua" << "scripts/a.lua:3:";
    QTest::addRow("as-is") << "=macro" << "macro:3:";
    // Lua shortens a long file name from the front ("...tail"): the prefix
    // is still recognized, because Lua itself computes it.
    QTest::addRow("long-file") << QStringLiteral("@") + QString(120, QLatin1Char('d')) + QStringLiteral("/x.lua") << "/x.lua:3:";
}

void tst_ChunkName::uncaughtErrorDropsOwnPrefix()
{
    QFETCH(QString, chunkName);
    QFETCH(QString, inTraceback);
    auto isle = QIsle::spawn();
    try {
        isle->eval(QStringLiteral("local a = 1\nlocal b = 2\nerror('boom')"), named(chunkName));
        QFAIL("expected an error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QCOMPARE(e.message(), QStringLiteral("boom"));
        QCOMPARE(e.line(), 3);
        QVERIFY2(e.traceback().contains(inTraceback), qPrintable(e.traceback()));
        QVERIFY2(QString::fromUtf8(e.what()).contains(QStringLiteral("boom")), e.what());
    }
}

void tst_ChunkName::syntaxErrorDropsOwnPrefix()
{
    auto isle = QIsle::spawn();
    try {
        isle->eval(QStringLiteral("local x = 1\nlocal y = = 2"), named(QStringLiteral("@scripts/bad.lua")));
        QFAIL("expected an error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Syntax);
        QCOMPARE(e.line(), 2);
        QVERIFY2(!e.message().contains(QStringLiteral("bad.lua")), qPrintable(e.message()));
        QVERIFY2(e.message().contains(QStringLiteral("unexpected symbol")), qPrintable(e.message()));
    }
    // load() inside a script reports the name it was given, as in Lua.
    const QVariant message = isle->eval(QStringLiteral("local f, e = load('x = = 1', '@other.lua') return e"));
    QVERIFY2(message.toString().startsWith(QStringLiteral("other.lua:1:")), qPrintable(message.toString()));
}

void tst_ChunkName::otherChunksKeepTheirPrefix()
{
    // A function defined by another chunk fails: its own position stays.
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("function check(v)\n  if not v then error('no value') end\nend"),
               named(QStringLiteral("@lib/check.lua")));
    try {
        isle->eval(QStringLiteral("check(nil)"), named(QStringLiteral("@main.lua")));
        QFAIL("expected an error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.message(), QStringLiteral("lib/check.lua:2: no value"));
        QCOMPARE(e.line(), 2); // the line where the error arose
        QVERIFY2(e.traceback().contains(QStringLiteral("main.lua:1:")), qPrintable(e.traceback()));
    }
}

void tst_ChunkName::callKeepsDefiningChunksPrefix()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("\nfunction fail() error('failed') end"), named(QStringLiteral("=defs")));
    try {
        isle->call(QStringLiteral("fail"));
        QFAIL("expected an error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QCOMPARE(e.message(), QStringLiteral("defs:2: failed"));
        QCOMPARE(e.line(), 2);
    }
}

void tst_ChunkName::spawnEvalTakesTheName()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> future = isle->spawnEval(QStringLiteral("return select(2, pcall(function() error('x') end))"),
                                               named(QStringLiteral("=job")));
    QCOMPARE(QIsle::waitFor(future).toString(), QStringLiteral("job:1: x"));
    future = isle->spawnEval(QStringLiteral("\nerror('late')"), named(QStringLiteral("@late.lua")));
    try {
        QIsle::waitFor(future);
        QFAIL("expected an error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.message(), QStringLiteral("late"));
        QCOMPARE(e.line(), 2);
    }
}

void tst_ChunkName::twoScriptsToldApart()
{
    QIsleOptions options;
    options.libraries = QIsleOptions::AllLibraries;
    auto isle = QIsle::spawn({}, options);
    isle->eval(QStringLiteral("function a() return debug.getinfo(1, 'S').source end"), named(QStringLiteral("@a.lua")));
    isle->eval(QStringLiteral("function b() return debug.getinfo(1, 'S').source end"), named(QStringLiteral("@b.lua")));
    QCOMPARE(isle->call(QStringLiteral("a")).toString(), QStringLiteral("@a.lua"));
    QCOMPARE(isle->call(QStringLiteral("b")).toString(), QStringLiteral("@b.lua"));
}

QTEST_GUILESS_MAIN(tst_ChunkName)
#include "tst_chunkname.moc"
