// call / spawnCall: arguments, dotted paths, NotFound.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

class tst_Call : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void withArguments();
    void argumentsKeepTheirTypes_data();
    void argumentsKeepTheirTypes();
    void dottedPath();
    void callableTable();
    void notFound_data();
    void notFound();
    void spawnCallFuture();
    void repeatedNameSeesTheCurrentGlobal();
};

void tst_Call::withArguments()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("function add(a, b) return a + b end"));
    QCOMPARE(isle->call(QStringLiteral("add"), {1, 2}), QVariant(qlonglong(3)));
    QCOMPARE(isle->call(QStringLiteral("add"), {1.5, 2}), QVariant(3.5));
}

void tst_Call::argumentsKeepTheirTypes_data()
{
    QTest::addColumn<QVariant>("value");
    QTest::addColumn<QString>("luaType");
    QTest::addRow("null") << QVariant() << "nil";
    QTest::addRow("bool") << QVariant(true) << "boolean";
    QTest::addRow("int") << QVariant(7) << "integer";
    QTest::addRow("qlonglong") << QVariant(qlonglong(1) << 40) << "integer";
    QTest::addRow("double") << QVariant(2.0) << "float";
    QTest::addRow("string") << QVariant(QStringLiteral("ü")) << "string";
}

void tst_Call::argumentsKeepTheirTypes()
{
    QFETCH(QVariant, value);
    QFETCH(QString, luaType);
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral(
            "function kind(v) return math.type(v) or type(v) end "
            "function echo(v) return v end"));
    QCOMPARE(isle->call(QStringLiteral("kind"), {value}).toString(), luaType);
    const QVariant back = isle->call(QStringLiteral("echo"), {value});
    if (value.typeId() == QMetaType::Int)
        QCOMPARE(back, QVariant(qlonglong(value.toInt())));
    else
        QCOMPARE(back, value);
}

void tst_Call::dottedPath()
{
    auto isle = QIsle::spawn();
    QCOMPARE(isle->call(QStringLiteral("string.upper"), {QStringLiteral("abc")}), QVariant(QStringLiteral("ABC")));
    isle->eval(QStringLiteral("app = { tools = { sum = function(a, b, c) return a + b + c end } }"));
    QCOMPARE(isle->call(QStringLiteral("app.tools.sum"), {1, 2, 3}), QVariant(qlonglong(6)));
}

void tst_Call::callableTable()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("obj = setmetatable({}, { __call = function(self, x) return x * 10 end })"));
    QCOMPARE(isle->call(QStringLiteral("obj"), {4}), QVariant(qlonglong(40)));
}

void tst_Call::notFound_data()
{
    QTest::addColumn<QString>("name");
    QTest::addRow("missing") << "nosuchfunction";
    QTest::addRow("number") << "aNumber";
    QTest::addRow("missing-field") << "string.nosuch";
    QTest::addRow("through-non-table") << "aNumber.field";
    QTest::addRow("empty") << "";
    QTest::addRow("trailing-dot") << "string.";
}

void tst_Call::notFound()
{
    QFETCH(QString, name);
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("aNumber = 5"));
    try {
        isle->call(name);
        QFAIL("expected NotFound");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::NotFound);
        QVERIFY2(e.message().contains(name), qPrintable(e.message()));
    }
    // The VM keeps serving.
    QCOMPARE(isle->eval(QStringLiteral("return aNumber")), QVariant(qlonglong(5)));
}

void tst_Call::spawnCallFuture()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("function greet(who) return 'hello ' .. who end"));
    QFuture<QVariant> future = isle->spawnCall(QStringLiteral("greet"), {QStringLiteral("isle")});
    QTRY_VERIFY_WITH_TIMEOUT(future.isFinished(), 5000);
    QCOMPARE(future.result(), QVariant(QStringLiteral("hello isle")));

    QFuture<QVariant> missing = isle->spawnCall(QStringLiteral("nope"));
    QTRY_VERIFY_WITH_TIMEOUT(missing.isFinished(), 5000);
    try {
        missing.waitForFinished();
        QFAIL("expected the future to carry NotFound");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::NotFound);
    }
}

QTEST_GUILESS_MAIN(tst_Call)
// The worker keeps the last plain name called as a Lua string (issue 18):
// the function itself is looked up anew every time.
void tst_Call::repeatedNameSeesTheCurrentGlobal()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("function f() return 1 end function g() return 2 end t = {f = function() return 3 end}"));
    QCOMPARE(isle->call(QStringLiteral("f")), QVariant(qlonglong(1)));
    QCOMPARE(isle->call(QStringLiteral("f")), QVariant(qlonglong(1)));
    isle->eval(QStringLiteral("function f() return 10 end"));
    QCOMPARE(isle->call(QStringLiteral("f")), QVariant(qlonglong(10)));
    QCOMPARE(isle->call(QStringLiteral("g")), QVariant(qlonglong(2)));
    QCOMPARE(isle->call(QStringLiteral("t.f")), QVariant(qlonglong(3)));
    QCOMPARE(isle->call(QStringLiteral("f")), QVariant(qlonglong(10)));
    // Built at run time, not a literal: the same name in other bytes.
    const QString name = QStringLiteral("f%1").arg(QString());
    QCOMPARE(isle->call(name), QVariant(qlonglong(10)));
    // A name out of ASCII is compared as given, made into UTF-8 once; a
    // longer name sharing the last one's start is another name.
    isle->eval(QStringLiteral("_G['gr\u00f6\u00dfe'] = function() return 4 end ff = function() return 5 end"));
    QCOMPARE(isle->call(QStringLiteral("gr\u00f6\u00dfe")), QVariant(qlonglong(4)));
    QCOMPARE(isle->call(QStringLiteral("gr\u00f6\u00dfe")), QVariant(qlonglong(4)));
    QCOMPARE(isle->call(QStringLiteral("f")), QVariant(qlonglong(10)));
    QCOMPARE(isle->call(QStringLiteral("ff")), QVariant(qlonglong(5)));
    QCOMPARE(isle->call(QStringLiteral("f")), QVariant(qlonglong(10)));
    isle->eval(QStringLiteral("f = nil"));
    try {
        isle->call(QStringLiteral("f"));
        QFAIL("a removed function was called");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::NotFound);
        QCOMPARE(e.message(), QStringLiteral("'f' is not a function"));
    }
    // Many in a pipeline, alternating, each with its own answer.
    QList<QFuture<QVariant>> futures;
    for (int i = 0; i < 200; ++i)
        futures << isle->spawnCall(i % 3 ? QStringLiteral("g") : QStringLiteral("t.f"));
    for (int i = 0; i < futures.size(); ++i)
        QCOMPARE(QIsle::waitFor(futures[i]), QVariant(qlonglong(i % 3 ? 2 : 3)));
}

#include "tst_call.moc"
