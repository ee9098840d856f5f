// print -> printed, registerFunction and its error paths.
#include <QIsle/QIsle>

#include <QtTest/QtTest>

class tst_Host : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void printEmitsPrinted();
    void printedArrivesInIsleThread();
    void registeredFunction();
    void dottedRegistration();
    void exceptionIsCatchableByPcall();
    void uncaughtExceptionIsCallback();
    void nonStdExceptionIsCallback();
    void unconvertibleArgumentIsConversion();
};

void tst_Host::printEmitsPrinted()
{
    auto isle = QIsle::spawn();
    QSignalSpy spy(isle.get(), &QIsle::printed);
    isle->eval(QStringLiteral("print('a', 1, 2.5, nil, true, setmetatable({}, {__tostring = function() return 'T' end}))"));
    isle->eval(QStringLiteral("print()"));
    QTRY_COMPARE_WITH_TIMEOUT(spy.size(), 2, 5000);
    QCOMPARE(spy.at(0).at(0).toString(), QStringLiteral("a\t1\t2.5\tnil\ttrue\tT"));
    QCOMPARE(spy.at(1).at(0).toString(), QString());
}

void tst_Host::printedArrivesInIsleThread()
{
    auto isle = QIsle::spawn();
    QThread *deliveredIn = nullptr;
    connect(isle.get(), &QIsle::printed, this, [&](const QString &) { deliveredIn = QThread::currentThread(); });
    (void)isle->spawnEval(QStringLiteral("print('x')"));
    QTRY_VERIFY_WITH_TIMEOUT(deliveredIn != nullptr, 5000);
    QCOMPARE(deliveredIn, QThread::currentThread());
}

void tst_Host::registeredFunction()
{
    auto isle = QIsle::spawn();
    QThread *ranIn = nullptr;
    isle->registerFunction(QStringLiteral("join"), [&](const QVariantList &args) {
        ranIn = QThread::currentThread();
        QStringList parts;
        for (const QVariant &a : args)
            parts << a.toString();
        return QVariant(parts.join(QLatin1Char('-')));
    });
    QCOMPARE(isle->eval(QStringLiteral("return join('a', 2, true)")), QVariant(QStringLiteral("a-2-true")));
    QVERIFY(ranIn && ranIn != QThread::currentThread());
}

void tst_Host::dottedRegistration()
{
    auto isle = QIsle::spawn();
    isle->registerFunction(QStringLiteral("app.math.triple"), [](const QVariantList &args) {
        return QVariant(args.value(0).toLongLong() * 3);
    });
    QCOMPARE(isle->eval(QStringLiteral("return app.math.triple(5)")), QVariant(qlonglong(15)));
    QCOMPARE(isle->call(QStringLiteral("app.math.triple"), {2}), QVariant(qlonglong(6)));
}

void tst_Host::exceptionIsCatchableByPcall()
{
    auto isle = QIsle::spawn();
    isle->registerFunction(QStringLiteral("fails"), [](const QVariantList &) -> QVariant {
        throw std::runtime_error("disk full");
    });
    const QVariant r = isle->eval(QStringLiteral("local ok, err = pcall(fails) return (ok and 'ok' or err)"));
    QVERIFY2(r.toString().contains(QStringLiteral("disk full")), qPrintable(r.toString()));
}

void tst_Host::uncaughtExceptionIsCallback()
{
    auto isle = QIsle::spawn();
    isle->registerFunction(QStringLiteral("fails"), [](const QVariantList &) -> QVariant {
        throw std::runtime_error("disk full");
    });
    try {
        isle->eval(QStringLiteral("local x = 1\nfails()"));
        QFAIL("expected Callback");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Callback);
        QCOMPARE(e.message(), QStringLiteral("disk full"));
        QCOMPARE(e.line(), 2);
    }
    QCOMPARE(isle->eval(QStringLiteral("return 'alive'")), QVariant(QStringLiteral("alive")));
}

void tst_Host::nonStdExceptionIsCallback()
{
    auto isle = QIsle::spawn();
    isle->registerFunction(QStringLiteral("throwsInt"), [](const QVariantList &) -> QVariant { throw 7; });
    try {
        isle->eval(QStringLiteral("throwsInt()"));
        QFAIL("expected Callback");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Callback);
    }
    QCOMPARE(isle->eval(QStringLiteral("return 'alive'")), QVariant(QStringLiteral("alive")));
}

void tst_Host::unconvertibleArgumentIsConversion()
{
    auto isle = QIsle::spawn();
    bool ran = false;
    isle->registerFunction(QStringLiteral("take"), [&](const QVariantList &) {
        ran = true;
        return QVariant();
    });
    try {
        isle->eval(QStringLiteral("take(1, {name = print})"));
        QFAIL("expected Conversion");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QVERIFY2(e.message().contains(QStringLiteral("args[2].name")), qPrintable(e.message()));
        QVERIFY2(e.message().contains(QStringLiteral("function")), qPrintable(e.message()));
    }
    QVERIFY(!ran);
}

QTEST_GUILESS_MAIN(tst_Host)
#include "tst_host.moc"
