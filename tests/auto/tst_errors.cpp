// QIsleError: kinds, message, line and traceback through every path.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

class tst_Errors : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void runtimeErrorWithLine_data();
    void runtimeErrorWithLine();
    void syntaxError_data();
    void syntaxError();
    void tracebackNamesFunctions();
    void errorObjects_data();
    void errorObjects();
    void futureRethrowsByType();
    void onFailedCatchesByType();
    void cloneKeepsEverything();
    void whatIsReadable();
};

void tst_Errors::runtimeErrorWithLine_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<int>("line");
    QTest::addColumn<QString>("text");
    QTest::addRow("error()") << "local a = 1\nlocal b = 2\nerror('boom')" << 3 << "boom";
    QTest::addRow("arithmetic") << "\nlocal t = nil\nreturn t + 1" << 3 << "attempt to perform arithmetic";
    QTest::addRow("in-function") << "local function f()\n  local x = {}\n  return x.y.z\nend\nreturn f()" << 3 << "attempt to index";
    QTest::addRow("c-function") << "\n\nreturn string.rep()" << 3 << "bad argument #1 to 'rep'";
    QTest::addRow("level-2") << "local function check(v)\n  error('bad value', 2)\nend\ncheck(1)" << 4 << "bad value";
}

void tst_Errors::runtimeErrorWithLine()
{
    QFETCH(QString, chunk);
    QFETCH(int, line);
    QFETCH(QString, text);
    auto isle = QIsle::spawn();
    try {
        isle->eval(chunk);
        QFAIL("expected an error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QCOMPARE(e.line(), line);
        QVERIFY2(e.message().contains(text), qPrintable(e.message()));
        QVERIFY2(!e.message().contains(QStringLiteral("stack traceback")), qPrintable(e.message()));
        QVERIFY2(e.traceback().contains(QStringLiteral("stack traceback")), qPrintable(e.traceback()));
    }
}

void tst_Errors::syntaxError_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<int>("line");
    QTest::addRow("unexpected") << "local x = 1\nlocal y = = 2" << 2;
    QTest::addRow("eof") << "for i = 1, 3 do\n  print(i)\n" << 3;
    QTest::addRow("first-line") << "return )" << 1;
}

void tst_Errors::syntaxError()
{
    QFETCH(QString, chunk);
    QFETCH(int, line);
    auto isle = QIsle::spawn();
    try {
        isle->eval(chunk);
        QFAIL("expected a syntax error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Syntax);
        QCOMPARE(e.line(), line);
        QVERIFY(!e.message().isEmpty());
    }
    QCOMPARE(isle->eval(QStringLiteral("return 'still here'")), QVariant(QStringLiteral("still here")));
}

void tst_Errors::tracebackNamesFunctions()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("function inner() error('deep') end\nfunction outer() inner() end"));
    try {
        isle->call(QStringLiteral("outer"));
        QFAIL("expected an error");
    } catch (const QIsleError &e) {
        QVERIFY2(e.traceback().contains(QStringLiteral("inner")), qPrintable(e.traceback()));
        QVERIFY2(e.traceback().contains(QStringLiteral("outer")), qPrintable(e.traceback()));
        QCOMPARE(e.line(), 1);
    }
}

void tst_Errors::errorObjects_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QString>("text");
    QTest::addRow("table") << "error({code = 1})" << "table";
    QTest::addRow("nil") << "error(nil)" << "nil";
    QTest::addRow("number") << "error(42)" << "42";
    QTest::addRow("tostring") << "error(setmetatable({}, {__tostring = function() return 'custom' end}))" << "custom";
    QTest::addRow("tostring-errors") << "error(setmetatable({}, {__tostring = function() error('again') end}))" << "table";
}

void tst_Errors::errorObjects()
{
    QFETCH(QString, chunk);
    QFETCH(QString, text);
    auto isle = QIsle::spawn();
    try {
        isle->eval(chunk);
        QFAIL("expected an error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QVERIFY2(e.message().contains(text), qPrintable(e.message()));
    }
    QCOMPARE(isle->eval(QStringLiteral("return 1")), QVariant(qlonglong(1)));
}

void tst_Errors::futureRethrowsByType()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("error('via future')"));
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    bool caught = false;
    try {
        (void)f.result();
    } catch (const QIsleError &e) {
        caught = true;
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QCOMPARE(e.message(), QStringLiteral("via future"));
        QCOMPARE(e.line(), 1);
    }
    QVERIFY(caught);
}

void tst_Errors::onFailedCatchesByType()
{
    auto isle = QIsle::spawn();
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("local x = nil; return x.field"))
                                  .onFailed([](const QIsleError &e) {
                                      return QVariant(QIsleError::kindName(e.kind()) + QLatin1Char('/')
                                                      + QString::number(e.line()));
                                  });
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QCOMPARE(f.result(), QVariant(QStringLiteral("Runtime/1")));
}

void tst_Errors::cloneKeepsEverything()
{
    const QIsleError e(QIsleError::Kind::Syntax, QStringLiteral("msg"), QStringLiteral("tb"), 7);
    std::unique_ptr<QIsleError> copy(e.clone());
    QCOMPARE(copy->kind(), QIsleError::Kind::Syntax);
    QCOMPARE(copy->message(), QStringLiteral("msg"));
    QCOMPARE(copy->traceback(), QStringLiteral("tb"));
    QCOMPARE(copy->line(), 7);
    QVERIFY_THROWS_EXCEPTION(QIsleError, copy->raise());
}

void tst_Errors::whatIsReadable()
{
    const QIsleError e(QIsleError::Kind::Runtime, QStringLiteral("boom"), {}, 3);
    QCOMPARE(QByteArray(e.what()), QByteArray("Runtime error at line 3: boom"));
    const QIsleError noLine(QIsleError::Kind::Busy, QStringLiteral("full"));
    QCOMPARE(QByteArray(noLine.what()), QByteArray("Busy error: full"));
}

QTEST_GUILESS_MAIN(tst_Errors)
#include "tst_errors.moc"
