// qisleClassifyInput: what a console does with typed input, as lua.c decides.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

using Kind = QIsleReplInput::Kind;
Q_DECLARE_METATYPE(QIsleReplInput::Kind)

class tst_Repl : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void classify_data();
    void classify();
    void syntaxErrorLine();
    void neverRuns();
    void chunkEvaluates_data();
    void chunkEvaluates();
};

void tst_Repl::classify_data()
{
    QTest::addColumn<QString>("input");
    QTest::addColumn<Kind>("kind");
    QTest::addColumn<QString>("chunk");

    QTest::addRow("arithmetic") << "1 + 2" << Kind::Expression << "return 1 + 2";
    QTest::addRow("name") << "x" << Kind::Expression << "return x";
    QTest::addRow("call") << "print('hi')" << Kind::Expression << "return print('hi')";
    QTest::addRow("several values") << "1, 'a', nil" << Kind::Expression << "return 1, 'a', nil";
    QTest::addRow("table constructor") << "{1, 2, x = 3}" << Kind::Expression << "return {1, 2, x = 3}";
    QTest::addRow("function value") << "function() end" << Kind::Expression << "return function() end";
    QTest::addRow("empty") << "" << Kind::Expression << "return ";
    QTest::addRow("assignment") << "x = 1" << Kind::Statements << "x = 1";
    QTest::addRow("local") << "local y = 2" << Kind::Statements << "local y = 2";
    QTest::addRow("two statements") << "a = 1 b = 2" << Kind::Statements << "a = 1 b = 2";
    QTest::addRow("for loop") << "for i = 1, 3 do print(i) end" << Kind::Statements
                              << "for i = 1, 3 do print(i) end";
    QTest::addRow("multi-line complete") << "function f()\n  return 1\nend" << Kind::Statements
                                         << "function f()\n  return 1\nend";
    QTest::addRow("open function") << "function f()" << Kind::Incomplete << "function f()";
    QTest::addRow("open if") << "if x then" << Kind::Incomplete << "if x then";
    QTest::addRow("open two lines") << "for i = 1, 3 do\n  print(i)" << Kind::Incomplete
                                    << "for i = 1, 3 do\n  print(i)";
    QTest::addRow("open call") << "print(1," << Kind::Incomplete << "print(1,";
    QTest::addRow("open table") << "t = {1, 2" << Kind::Incomplete << "t = {1, 2";
    QTest::addRow("open long string") << "s = [[abc" << Kind::Incomplete << "s = [[abc";
    QTest::addRow("open long comment") << "--[[ note" << Kind::Incomplete << "--[[ note";
    QTest::addRow("dangling operator") << "1 +" << Kind::Incomplete << "1 +";
    QTest::addRow("stray end") << "end" << Kind::SyntaxError << "end";
    QTest::addRow("bad token") << "x = = 1" << Kind::SyntaxError << "x = = 1";
    QTest::addRow("open short string") << "s = 'abc" << Kind::Incomplete << "s = 'abc"; // as lua.c
    QTest::addRow("short string across lines") << "s = 'abc\nd'" << Kind::SyntaxError << "s = 'abc\nd'";
    QTest::addRow("bad second line") << "x = 1\ny = )" << Kind::SyntaxError << "x = 1\ny = )";
}

void tst_Repl::classify()
{
    QFETCH(QString, input);
    QFETCH(Kind, kind);
    QFETCH(QString, chunk);
    const QIsleReplInput r = qisleClassifyInput(input);
    QCOMPARE(r.kind, kind);
    QCOMPARE(r.chunk, chunk);
    if (kind == Kind::SyntaxError) {
        QVERIFY(!r.error.isEmpty());
        QVERIFY2(!r.error.startsWith(QLatin1String("input:")), qPrintable(r.error));
        QVERIFY(r.line >= 1);
    } else {
        QCOMPARE(r.line, -1);
    }
}

void tst_Repl::syntaxErrorLine()
{
    const QIsleReplInput r = qisleClassifyInput(QStringLiteral("x = 1\ny = 2\nz = )"));
    QCOMPARE(r.kind, Kind::SyntaxError);
    QCOMPARE(r.line, 3);
    QVERIFY2(r.error.contains(QLatin1String("')'")), qPrintable(r.error));
}

void tst_Repl::neverRuns()
{
    // A side effect that would show if the input ran: a loop that never ends.
    QCOMPARE(qisleClassifyInput(QStringLiteral("while true do end")).kind, Kind::Statements);
    QCOMPARE(qisleClassifyInput(QStringLiteral("(function() while true do end end)()")).kind,
             Kind::Expression);
}

void tst_Repl::chunkEvaluates_data()
{
    QTest::addColumn<QString>("input");
    QTest::addColumn<QVariant>("value");
    QTest::addRow("expression") << "6 * 7" << QVariant(qlonglong(42));
    QTest::addRow("string") << "('ab'):rep(2)" << QVariant(QStringLiteral("abab"));
    QTest::addRow("statements") << "local a = 2 return a * 3" << QVariant(qlonglong(6));
    QTest::addRow("assignment") << "z = 1" << QVariant();
}

void tst_Repl::chunkEvaluates()
{
    // What a console does next: evaluate the chunk on the isle.
    QFETCH(QString, input);
    QFETCH(QVariant, value);
    auto isle = QIsle::spawn();
    const QIsleReplInput r = qisleClassifyInput(input);
    QVERIFY(r.kind == Kind::Expression || r.kind == Kind::Statements);
    QCOMPARE(isle->eval(r.chunk), value);
}

QTEST_GUILESS_MAIN(tst_Repl)
#include "tst_repl.moc"
