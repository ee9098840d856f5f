// QObjects in Lua: exposeObject and every QObject* that reaches a script --
// properties, methods and overloads, enums, signals, identity, lifetime --
// with objects on the test's main thread, on the Lua thread and on a third
// thread (DESIGN, "Calls into other threads; QObjects in Lua").
#include <QIsle/QIsle>
#include <QIsle/QIsleLua>

#include <QtTest/QtTest>

#include <atomic>
#include <future>
#include <thread>

using namespace Qt::StringLiterals;

class Counter : public QObject
{
    Q_OBJECT
    Q_PROPERTY(int value READ value WRITE setValue NOTIFY valueChanged)
    Q_PROPERTY(double ratio MEMBER m_ratio)
    Q_PROPERTY(QString name READ name CONSTANT)
    Q_PROPERTY(Color color READ color WRITE setColor)
    Q_PROPERTY(QStringList tags MEMBER m_tags)
    Q_PROPERTY(QVariantList items MEMBER m_items)
    Q_PROPERTY(QVariant anything MEMBER m_anything)
    Q_PROPERTY(QObject *partner MEMBER m_partner)
    Q_PROPERTY(QString threadName READ threadName)
    Q_PROPERTY(bool enabled MEMBER m_enabled)
    Q_PROPERTY(qlonglong big MEMBER m_big)
    Q_PROPERTY(uint count MEMBER m_count)
    Q_PROPERTY(float narrow MEMBER m_narrow)

public:
    enum Color { Red, Green = 5, Blue };
    Q_ENUM(Color)

    explicit Counter(QObject *parent = nullptr) : QObject(parent) { }

    int value() const { return m_value; }
    void setValue(int v)
    {
        m_lastThread = QThread::currentThread();
        if (v == m_value)
            return;
        m_value = v;
        Q_EMIT valueChanged(v);
    }
    QString name() const { return u"counter"_s; }
    Color color() const { return m_color; }
    void setColor(Color c) { m_color = c; }
    QString threadName() const { return QThread::currentThread()->objectName(); }

    Q_INVOKABLE int add(int a, int b)
    {
        m_lastThread = QThread::currentThread();
        return a + b;
    }
    Q_INVOKABLE double add(double a, double b) { return a + b + 0.25; }
    Q_INVOKABLE QString add(const QString &a, const QString &b) { return a + u'+' + b; }

    Q_INVOKABLE QString kind(qlonglong) { return u"integer"_s; }
    Q_INVOKABLE QString kind(double) { return u"double"_s; }
    Q_INVOKABLE QString kind(const QString &) { return u"string"_s; }
    Q_INVOKABLE QString kind(bool) { return u"bool"_s; }
    Q_INVOKABLE QString kind(const QVariantList &) { return u"list"_s; }
    Q_INVOKABLE QString kind(const QVariantMap &) { return u"map"_s; }
    Q_INVOKABLE QString kind(Counter *) { return u"Counter"_s; }

    Q_INVOKABLE QString pair(int, double) { return u"int,double"_s; }
    Q_INVOKABLE QString pair(double, int) { return u"double,int"_s; }

    Q_INVOKABLE QString twice(int) { return u"int"_s; }
    Q_INVOKABLE QString twice(long) { return u"long"_s; }

    Q_INVOKABLE QString any(const QVariant &v) { return QString::fromLatin1(v.typeName() ? v.typeName() : "invalid"); }
    Q_INVOKABLE int scaled(int v, int factor = 10) { return v * factor; }
    Q_INVOKABLE Counter *makeChild(const QString &name)
    {
        auto *c = new Counter(this);
        c->setObjectName(name);
        return c;
    }
    Q_INVOKABLE QObject *self() { return this; }
    Q_INVOKABLE QVariant selfAsVariant() { return QVariant::fromValue(this); }
    Q_INVOKABLE QObjectList children2() { return children(); }
    Q_INVOKABLE QString nameOf(QObject *o) { return o ? o->objectName() : u"null"_s; }
    Q_INVOKABLE Color nextColor(Color c) { return c == Red ? Green : c == Green ? Blue : Red; }
    Q_INVOKABLE void emitPinged(const QString &text, int n) { Q_EMIT pinged(text, n); }
    Q_INVOKABLE double half(double v) { return v / 2; }
    Q_INVOKABLE bool negate(bool b) { return !b; }
    Q_INVOKABLE qlonglong bigger(qlonglong v) { return v + 1; }
    Q_INVOKABLE uint twiceU(uint v) { return v * 2; }
    Q_INVOKABLE void touch() { ++m_touches; }
    int m_touches = 0;

    QThread *m_lastThread = nullptr;
    int m_resets = 0;

public Q_SLOTS:
    void reset()
    {
        ++m_resets;
        setValue(0);
    }

protected Q_SLOTS:
    void hidden() { }

Q_SIGNALS:
    void valueChanged(int value);
    void pinged(const QString &text, int n);
    void handedOver(QObject *object);

private:
    int m_value = 0;
    double m_ratio = 0.5;
    Color m_color = Red;
    QStringList m_tags{u"a"_s, u"b"_s};
    QVariantList m_items{1, u"two"_s};
    QVariant m_anything;
    QObject *m_partner = nullptr;
    bool m_enabled = true;
    qlonglong m_big = qlonglong(1) << 40;
    uint m_count = 4000000000u;
    float m_narrow = 0.5f;
};

// A thread with an event loop, for objects that live in neither the test's
// main thread nor the Lua thread.
// A thread with an event loop (for objects that live in neither the test's
// thread nor the Lua thread): a std::thread running a QEventLoop, so that

// Runs fn in object's thread and waits for it: a posted event whose
// destructor (run by Qt after delivery, in that thread) calls fn, and a
// std::promise -- hand-offs ThreadSanitizer sees, unlike a queued functor's
// or BlockingQueuedConnection's inside the uninstrumented Qt.
class RunEvent : public QEvent
{
public:
    explicit RunEvent(std::function<void()> fn) : QEvent(QEvent::Type(QEvent::User + 77)), m_fn(std::move(fn)) { }
    ~RunEvent() override { m_fn(); }

private:
    std::function<void()> m_fn;
};

template <typename F>
void runIn(QObject *object, F fn)
{
    std::promise<void> done;
    QCoreApplication::postEvent(object, new RunEvent([&done, fn] {
        fn();
        done.set_value();
    }));
    done.get_future().wait();
}

// ThreadSanitizer sees its start and its join.
class EventThread
{
public:
    explicit EventThread(const QString &name)
    {
        std::promise<std::pair<QThread *, QEventLoop *>> ready;
        auto started = ready.get_future();
        m_thread = std::thread([&ready, name] {
            QThread::currentThread()->setObjectName(name);
            QEventLoop loop; // makes the thread's event dispatcher
            ready.set_value({QThread::currentThread(), &loop});
            loop.exec();
        });
        std::tie(m_qthread, m_loop) = started.get();
    }
    ~EventThread()
    {
        QCoreApplication::postEvent(m_loop, new QEvent(QEvent::Quit));
        m_thread.join();
    }
    QThread *thread() const { return m_qthread; }

private:
    std::thread m_thread;
    QThread *m_qthread = nullptr;
    QEventLoop *m_loop = nullptr;
};

class tst_Objects : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();

    void readProperties();
    void writeProperties();
    void readOnlyAndUnknown_data();
    void readOnlyAndUnknown();
    void methods();
    void overloads_data();
    void overloads();
    void badCalls_data();
    void badCalls();
    void enums();
    void objectsBothWays();
    void identityAndToString();
    void dottedExposeAndNull();
    void nothingDeletes();

    void destroyedBeforeUse();
    void destroyedBetweenUses();
    void exposedIsWeakAtOnce();

    void plainTypes_data();
    void plainTypes();
    void threads_data();
    void threads();
    void movedObjectIsFollowed();

    void connectRunsHandlerAsRequest();
    void handlerFailureIsReported();
    void connectionEnds();
    void connectionEndsAtShutdown();
    void signalFromManyThreads();
    void waitForSignal();
    void waitTimesOut();
    void emitFromLua();
    void waitWhereLuaCannotYield();
    void waitForAnotherRequestsEmission();
    void destroyedSignal();
    void signalArgumentsThatAreObjects();

    void hammerPropertiesOfMainThreadObject();
};

void tst_Objects::initTestCase()
{
    QThread::currentThread()->setObjectName(u"main"_s);
}

void tst_Objects::readProperties()
{
    auto isle = QIsle::spawn();
    Counter counter;
    counter.setValue(7);
    isle->exposeObject(u"counter"_s, &counter);
    QCOMPARE(isle->eval(u"return math.type(counter.value), counter.value"_s), QVariant(u"integer"_s));
    QCOMPARE(isle->eval(u"return counter.value"_s), QVariant(qlonglong(7)));
    QCOMPARE(isle->eval(u"return math.type(counter.ratio)"_s), QVariant(u"float"_s));
    QCOMPARE(isle->eval(u"return counter.ratio"_s), QVariant(0.5));
    QCOMPARE(isle->eval(u"return counter.name"_s), QVariant(u"counter"_s));
    QCOMPARE(isle->eval(u"return table.concat(counter.tags, ',')"_s), QVariant(u"a,b"_s));
    QCOMPARE(isle->eval(u"return counter.items[2]"_s), QVariant(u"two"_s));
    QCOMPARE(isle->eval(u"return counter.anything"_s), QVariant());
    QCOMPARE(isle->eval(u"return counter.partner"_s), QVariant());
    QCOMPARE(isle->eval(u"return counter.objectName"_s), QVariant(QString()));
    // A property read runs in the object's thread.
    QCOMPARE(isle->eval(u"return counter.threadName"_s), QVariant(u"main"_s));
}

void tst_Objects::writeProperties()
{
    auto isle = QIsle::spawn();
    Counter counter;
    QSignalSpy changed(&counter, &Counter::valueChanged);
    isle->exposeObject(u"counter"_s, &counter);
    isle->eval(u"counter.value = 42"_s);
    QCOMPARE(counter.value(), 42);
    QCOMPARE(counter.m_lastThread, QThread::currentThread());
    QCOMPARE(changed.size(), 1);
    isle->eval(u"counter.value = 6.0"_s); // a whole float converts
    QCOMPARE(counter.value(), 6);
    isle->eval(u"counter.ratio = 2"_s);
    QCOMPARE(counter.property("ratio").toDouble(), 2.0);
    isle->eval(u"counter.tags = {'x', 'y', 'z'}"_s);
    QCOMPARE(counter.property("tags").toStringList(), QStringList({u"x"_s, u"y"_s, u"z"_s}));
    isle->eval(u"counter.anything = {k = 1}"_s);
    QCOMPARE(counter.property("anything").toMap().value(u"k"_s), QVariant(qlonglong(1)));
    isle->eval(u"counter.objectName = 'renamed'"_s);
    QCOMPARE(counter.objectName(), u"renamed"_s);
    Counter other;
    isle->exposeObject(u"other"_s, &other);
    isle->eval(u"counter.partner = other"_s);
    QCOMPARE(counter.property("partner").value<QObject *>(), &other);
    QCOMPARE(isle->eval(u"return rawequal(counter.partner, other)"_s), QVariant(true));
    isle->eval(u"counter.partner = nil"_s);
    QCOMPARE(counter.property("partner").value<QObject *>(), nullptr);
}

void tst_Objects::readOnlyAndUnknown_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QString>("message");
    QTest::addRow("read-only") << u"counter.name = 'x'"_s << u"Counter.name is read-only"_s;
    QTest::addRow("unknown read") << u"return counter.nope"_s << u"Counter has no property, method or signal 'nope'"_s;
    QTest::addRow("unknown write") << u"counter.nope = 1"_s << u"Counter has no property 'nope'"_s;
    QTest::addRow("assign a method") << u"counter.add = 1"_s << u"Counter.add is not a property: it cannot be assigned"_s;
    QTest::addRow("wrong type") << u"counter.value = 'x'"_s
                                << u"Counter.value: cannot assign a string to a property of type int"_s;
    QTest::addRow("fraction to int") << u"counter.value = 1.5"_s
                                     << u"Counter.value: cannot assign a number to a property of type int"_s;
    QTest::addRow("out of int range") << u"counter.value = 1 << 40"_s
                                      << u"Counter.value: cannot assign a integer to a property of type int"_s;
    QTest::addRow("unknown enum key") << u"counter.color = 'Purple'"_s
                                      << u"Counter.color: cannot assign a string to a property of type Counter::Color"_s;
    QTest::addRow("non-string key") << u"return counter[1]"_s << u"Counter has no property, method or signal 'number'"_s;
}

void tst_Objects::readOnlyAndUnknown()
{
    QFETCH(QString, chunk);
    QFETCH(QString, message);
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    try {
        isle->eval(chunk);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.message(), message);
    }
    // pcall sees the same message, and the script goes on.
    QCOMPARE(isle->eval(u"local ok, e = pcall(function() "_s + chunk + u" end) return ok"_s), QVariant(false));
}

void tst_Objects::methods()
{
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    QCOMPARE(isle->eval(u"return counter:add(2, 3)"_s), QVariant(qlonglong(5)));
    QCOMPARE(counter.m_lastThread, QThread::currentThread());
    QCOMPARE(isle->eval(u"return counter:scaled(4)"_s), QVariant(qlonglong(40)));    // default argument
    QCOMPARE(isle->eval(u"return counter:scaled(4, 2)"_s), QVariant(qlonglong(8)));
    counter.setValue(3);
    QCOMPARE(isle->eval(u"return select('#', counter:reset())"_s), QVariant(qlonglong(0))); // void: nothing
    QCOMPARE(counter.value(), 0);
    QCOMPARE(counter.m_resets, 1);
    // The method is a value: a plain call with the object works too.
    QCOMPARE(isle->eval(u"local f = counter.add return f(counter, 1, 1)"_s), QVariant(qlonglong(2)));
    // Protected slots stay hidden.
    QVERIFY_THROWS_EXCEPTION(QIsleError, isle->eval(u"counter:hidden()"_s));
}

void tst_Objects::overloads_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QVariant>("result");
    QTest::addRow("int,int") << u"return counter:add(1, 2)"_s << QVariant(qlonglong(3));
    QTest::addRow("double,double") << u"return counter:add(1.5, 2)"_s << QVariant(3.75);
    QTest::addRow("both floats") << u"return counter:add(1.0, 2.0)"_s << QVariant(3.25);
    QTest::addRow("strings") << u"return counter:add('a', 'b')"_s << QVariant(u"a+b"_s);
    QTest::addRow("kind integer") << u"return counter:kind(1)"_s << QVariant(u"integer"_s);
    QTest::addRow("kind double") << u"return counter:kind(1.5)"_s << QVariant(u"double"_s);
    QTest::addRow("kind string") << u"return counter:kind('x')"_s << QVariant(u"string"_s);
    QTest::addRow("kind bool") << u"return counter:kind(true)"_s << QVariant(u"bool"_s);
    QTest::addRow("kind list") << u"return counter:kind({1, 2})"_s << QVariant(u"list"_s);
    QTest::addRow("kind map") << u"return counter:kind({a = 1})"_s << QVariant(u"map"_s);
    QTest::addRow("kind object") << u"return counter:kind(counter)"_s << QVariant(u"Counter"_s);
    QTest::addRow("exact beats conversion") << u"return counter:pair(1, 1.5)"_s << QVariant(u"int,double"_s);
    QTest::addRow("exact beats conversion, swapped") << u"return counter:pair(1.5, 1)"_s << QVariant(u"double,int"_s);
    QTest::addRow("variant takes anything") << u"return counter:any({1})"_s << QVariant(u"QVariantList"_s);
    QTest::addRow("variant nil") << u"return counter:any(nil)"_s << QVariant(u"invalid"_s);
    QTest::addRow("object argument") << u"local c = counter:makeChild('kid') return counter:nameOf(c)"_s
                                     << QVariant(u"kid"_s);
    QTest::addRow("nil object argument") << u"return counter:nameOf(nil)"_s << QVariant(u"null"_s);
    QTest::addRow("enum argument by name") << u"return counter:nextColor('Green')"_s << QVariant(qlonglong(6));
    QTest::addRow("enum argument by value") << u"return counter:nextColor(0)"_s << QVariant(qlonglong(5));
}

void tst_Objects::overloads()
{
    QFETCH(QString, chunk);
    QFETCH(QVariant, result);
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    QCOMPARE(isle->eval(chunk), result);
}

void tst_Objects::badCalls_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QString>("message");
    QTest::addRow("count") << u"counter:add(1)"_s
                           << u"Counter.add: no overload takes 1 argument; candidates: add(int,int), add(double,double), add(QString,QString)"_s;
    QTest::addRow("no match") << u"counter:add(true, {})"_s
                              << u"Counter.add: no overload matches (boolean, table); candidates: add(int,int), add(double,double), add(QString,QString)"_s;
    QTest::addRow("mixed") << u"counter:add(1, 'x')"_s
                           << u"Counter.add: no overload matches (integer, string); candidates: add(int,int), add(double,double), add(QString,QString)"_s;
    QTest::addRow("tie") << u"counter:pair(1, 1)"_s
                         << u"Counter.pair: ambiguous call with (integer, integer); candidates: pair(int,double), pair(double,int)"_s;
    QTest::addRow("two exact") << u"counter:twice(1)"_s
                               << u"Counter.twice: ambiguous call with (integer); candidates: twice(int), twice(long)"_s;
    QTest::addRow("unconvertible table") << u"counter:kind(isle)"_s
                                           << u"Counter.kind: no overload matches (table); candidates: kind(qlonglong), kind(double), kind(QString), kind(bool), kind(QVariantList), kind(QVariantMap), kind(Counter*)"_s;
    QTest::addRow("not called on an object") << u"counter.add(1, 2)"_s
                                             << u"Counter.add: call it on a Counter, as obj:add(...)"_s;
    QTest::addRow("int out of range") << u"counter:scaled(1 << 40)"_s
                                      << u"Counter.scaled: no overload matches (integer); candidates: scaled(int,int), scaled(int)"_s;
}

void tst_Objects::badCalls()
{
    QFETCH(QString, chunk);
    QFETCH(QString, message);
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    try {
        isle->eval(chunk);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Runtime);
        QCOMPARE(e.message(), message);
    }
}

void tst_Objects::enums()
{
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    QCOMPARE(isle->eval(u"return counter.Green"_s), QVariant(qlonglong(5)));
    QCOMPARE(isle->eval(u"return counter.Color.Blue"_s), QVariant(qlonglong(6)));
    QCOMPARE(isle->eval(u"return counter.color"_s), QVariant(qlonglong(0)));
    isle->eval(u"counter.color = 'Blue'"_s);
    QCOMPARE(counter.color(), Counter::Blue);
    isle->eval(u"counter.color = counter.Green"_s);
    QCOMPARE(counter.color(), Counter::Green);
    isle->eval(u"counter.color = 'Counter::Red'"_s);
    QCOMPARE(counter.color(), Counter::Red);
    QCOMPARE(isle->eval(u"return counter:nextColor(counter.Blue)"_s), QVariant(qlonglong(0)));
}

void tst_Objects::objectsBothWays()
{
    auto isle = QIsle::spawn();
    Counter counter;
    counter.setObjectName(u"top"_s);
    isle->exposeObject(u"counter"_s, &counter);
    // Returned by a method: the same kind of value.
    QCOMPARE(isle->eval(u"local c = counter:makeChild('kid') c.value = 3 return c:add(c.value, 1)"_s),
             QVariant(qlonglong(4)));
    QCOMPARE(isle->eval(u"return rawequal(counter:self(), counter)"_s), QVariant(true));
    QCOMPARE(isle->eval(u"return rawequal(counter:selfAsVariant(), counter)"_s), QVariant(true));
    QCOMPARE(isle->eval(u"local list = counter:children2() return #list, list[1].objectName"_s), QVariant(qlonglong(1)));
    QCOMPARE(isle->eval(u"return counter:children2()[1].objectName"_s), QVariant(u"kid"_s));
    // Back to C++: a QVariant that qvariant_cast<QObject *> reads.
    QVariant back = isle->eval(u"return counter"_s);
    QCOMPARE(qvariant_cast<QObject *>(back), &counter);
    QObject *seen = nullptr;
    isle->registerFunction(u"look"_s, [&](const QVariantList &args) {
        seen = qvariant_cast<QObject *>(args.value(0));
        return QVariant::fromValue(seen); // and back into Lua
    });
    QCOMPARE(isle->eval(u"return rawequal(look(counter), counter)"_s), QVariant(true));
    QCOMPARE(seen, &counter);
    // A call argument: the object, weakly referenced at once.
    isle->eval(u"function nameOf(o) return o.objectName end"_s);
    QCOMPARE(isle->call(u"nameOf"_s, {QVariant::fromValue(&counter)}), QVariant(u"top"_s));
    isle->eval(u"function firstIs(t) return rawequal(t[1], counter) end"_s);
    QCOMPARE(isle->call(u"firstIs"_s, {QVariant(QVariantList{QVariant::fromValue(static_cast<QObject *>(&counter))})}),
             QVariant(true)); // inside a list too
    // A QVariant holding a null pointer is nil.
    QCOMPARE(isle->call(u"type"_s, {QVariant::fromValue(static_cast<QObject *>(nullptr))}), QVariant(u"nil"_s));
    // In exec closures too.
    QCOMPARE(isle->exec([&](lua_State *L) {
        QIsleValue::push(L, QVariant::fromValue(&counter));
        QVariant v = QIsleValue::read(L, -1);
        lua_pop(L, 1);
        return QVariant(qvariant_cast<QObject *>(v) == &counter);
    }), QVariant(true));
    // Other userdata still do not convert.
    QVERIFY_THROWS_EXCEPTION(QIsleError, isle->eval(u"return io.stdout"_s));
}

void tst_Objects::identityAndToString()
{
    auto isle = QIsle::spawn();
    Counter counter;
    counter.setObjectName(u"c1"_s);
    Counter unnamed;
    isle->exposeObject(u"counter"_s, &counter);
    isle->exposeObject(u"again"_s, &counter);
    isle->exposeObject(u"unnamed"_s, &unnamed);
    QCOMPARE(isle->eval(u"return rawequal(counter, again) and counter == again and counter ~= unnamed"_s),
             QVariant(true));
    QCOMPARE(isle->eval(u"local t = {} t[counter] = 1 t[again] = 2 t[unnamed] = 3 "
                        "local n = 0 for _ in pairs(t) do n = n + 1 end return n * 10 + t[counter]"_s),
             QVariant(qlonglong(22)));
    const QString address = QString::number(quintptr(&counter), 16);
    QCOMPARE(isle->eval(u"return tostring(counter)"_s), QVariant(u"Counter(0x%1, \"c1\")"_s.arg(address)));
    QCOMPARE(isle->eval(u"return tostring(unnamed)"_s),
             QVariant(u"Counter(0x%1)"_s.arg(QString::number(quintptr(&unnamed), 16))));
    QCOMPARE(isle->eval(u"return type(counter)"_s), QVariant(u"userdata"_s));
    QCOMPARE(isle->eval(u"return getmetatable(counter)"_s), QVariant(u"locked"_s));
    // One value while referenced, across garbage collections.
    QCOMPARE(isle->eval(u"keep = counter collectgarbage() collectgarbage() return rawequal(keep, counter:self())"_s),
             QVariant(true));
}

void tst_Objects::dottedExposeAndNull()
{
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"app.model.counter"_s, &counter);
    QCOMPARE(isle->eval(u"return app.model.counter:add(1, 2)"_s), QVariant(qlonglong(3)));
    isle->exposeObject(u"nothing"_s, nullptr);
    QCOMPARE(isle->eval(u"return nothing == nil"_s), QVariant(true));
}

void tst_Objects::nothingDeletes()
{
    auto isle = QIsle::spawn();
    QPointer<Counter> counter = new Counter;
    isle->exposeObject(u"counter"_s, counter);
    QVERIFY_THROWS_EXCEPTION(QIsleError, isle->eval(u"counter:deleteLater()"_s));
    isle->eval(u"counter = nil collectgarbage() collectgarbage()"_s);
    isle.reset();
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    QVERIFY(counter);
    delete counter;
}

void tst_Objects::destroyedBeforeUse()
{
    auto isle = QIsle::spawn();
    auto *counter = new Counter;
    isle->exposeObject(u"counter"_s, counter);
    isle->eval(u"keep = counter"_s);
    delete counter;
    for (const QString &chunk : {u"return keep.value"_s, u"keep.value = 1"_s, u"return keep:add(1, 2)"_s,
                                 u"keep.valueChanged:connect(print)"_s, u"keep.valueChanged:emit(1)"_s}) {
        try {
            isle->eval(chunk);
            QFAIL(qPrintable(chunk));
        } catch (const QIsleError &e) {
            QVERIFY2(e.message().contains(u"destroyed"_s), qPrintable(e.message()));
        }
    }
    QVERIFY(isle->eval(u"return tostring(keep)"_s).toString().endsWith(u", destroyed)"_s));
    // Passing it back to C++ or as an argument is refused too.
    try {
        isle->eval(u"return keep"_s);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QVERIFY2(e.message().contains(u"destroyed"_s), qPrintable(e.message()));
    }
}

void tst_Objects::destroyedBetweenUses()
{
    // A new object at the address of a dead one is a new Lua value.
    auto isle = QIsle::spawn();
    for (int i = 0; i < 50; ++i) {
        auto *c = new Counter;
        c->setValue(i);
        isle->exposeObject(u"c%1"_s.arg(i), c);
        QCOMPARE(isle->eval(u"return c%1.value"_s.arg(i)), QVariant(qlonglong(i)));
        delete c;
        QVERIFY_THROWS_EXCEPTION(QIsleError, isle->eval(u"return c%1.value"_s.arg(i)));
    }
}

void tst_Objects::exposedIsWeakAtOnce()
{
    // exposeObject returns without waiting; the object may die before the
    // VM gets to it.
    auto isle = QIsle::spawn();
    auto blocker = isle->spawnEval(u"isle.sleep(100)"_s);
    auto *counter = new Counter;
    isle->exposeObject(u"counter"_s, counter);
    delete counter;
    QIsle::waitFor(blocker);
    try {
        isle->eval(u"return counter.value"_s);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QVERIFY2(e.message().contains(u"destroyed"_s), qPrintable(e.message()));
    }
}

// Plain types take a faster path for objects of the Lua thread: the same
// results either way.
void tst_Objects::plainTypes_data()
{
    QTest::addColumn<bool>("onLuaThread");
    QTest::addRow("object in the Lua thread") << true;
    QTest::addRow("object in the main thread") << false;
}

void tst_Objects::plainTypes()
{
    QFETCH(bool, onLuaThread);
    auto isle = QIsle::spawn();
    Counter *counter = onLuaThread
            ? qvariant_cast<Counter *>(isle->exec([](lua_State *) { return QVariant::fromValue(new Counter); }))
            : new Counter;
    counter->setValue(-3);
    isle->exposeObject(u"c"_s, counter);
    const QVariantList got = isle->eval(
            u"return { c.value, math.type(c.value), c.enabled, c.big, c.count, c.narrow, math.type(c.ratio), "
            "c:add(2, 3), c:half(3.0), c:negate(false), c:bigger(1 << 50), c:twiceU(7), select('#', c:touch()), "
            "c:half(3), (pcall(c.twiceU, c, -1)) }"_s).toList();
    const QVariantList expected{qlonglong(-3), u"integer"_s, true, qlonglong(1) << 40, qlonglong(4000000000u), 0.5,
                                u"float"_s, qlonglong(5), 1.5, true, (qlonglong(1) << 50) + 1, qlonglong(14),
                                qlonglong(0), 1.5, false};
    QCOMPARE(got, expected);
    QCOMPARE(counter->m_touches, 1);
    if (onLuaThread)
        isle->exec([counter](lua_State *) { delete counter; return QVariant(); });
    else
        delete counter;
}

// Where the object lives: the test's main thread, the Lua thread, a third thread.
void tst_Objects::threads_data()
{
    QTest::addColumn<QString>("where");
    QTest::addRow("main thread") << u"main"_s;
    QTest::addRow("Lua thread") << u"lua"_s;
    QTest::addRow("third thread") << u"third"_s;
}

void tst_Objects::threads()
{
    QFETCH(QString, where);
    QIsleOptions options;
    options.threadName = u"lua"_s;
    auto isle = QIsle::spawn({}, options);
    EventThread third(u"third"_s);
    Counter *counter = nullptr;
    if (where == u"main"_s) {
        counter = new Counter;
    } else if (where == u"lua"_s) {
        counter = qvariant_cast<Counter *>(isle->exec([](lua_State *) {
            QThread::currentThread()->setObjectName(u"lua"_s);
            return QVariant::fromValue(new Counter);
        }));
    } else {
        counter = new Counter;
        counter->moveToThread(third.thread());
    }
    isle->exposeObject(u"counter"_s, counter);
    // Property reads, writes, methods and signals all run in the object's thread.
    QCOMPARE(isle->eval(u"return counter.threadName"_s), QVariant(where));
    isle->eval(u"counter.value = 5"_s);
    QCOMPARE(isle->eval(u"return counter.value"_s), QVariant(qlonglong(5)));
    QCOMPARE(isle->eval(u"return counter:add(counter.value, 1)"_s), QVariant(qlonglong(6)));
    QCOMPARE(counter->m_lastThread->objectName(), where);
    QCOMPARE(isle->eval(u"local c = counter:makeChild('kid') return c.threadName"_s), QVariant(where));
    QCOMPARE(isle->eval(u"return tostring(counter):match('^Counter%(0x%x+%)$') ~= nil"_s), QVariant(true));
    QCOMPARE(isle->eval(u"got = {} conn = counter.valueChanged:connect(function(v) got[#got + 1] = v end) "
                        "counter.value = 9 return true"_s),
             QVariant(true));
    QTRY_COMPARE_WITH_TIMEOUT(isle->eval(u"return #got"_s), QVariant(qlonglong(1)), 5000);
    QCOMPARE(isle->eval(u"return got[1]"_s), QVariant(qlonglong(9)));
    isle->eval(u"conn:disconnect()"_s);
    // Destroyed in its own thread.
    if (where == u"lua"_s)
        isle->exec([counter](lua_State *) { delete counter; return QVariant(); });
    else if (where == u"third"_s)
        runIn(counter, [counter] { delete counter; });
    else
        delete counter;
    try {
        isle->eval(u"return counter.value"_s);
        QFAIL("no error");
    } catch (const QIsleError &e) {
        QVERIFY2(e.message().contains(u"destroyed"_s), qPrintable(e.message()));
    }
}

void tst_Objects::movedObjectIsFollowed()
{
    auto isle = QIsle::spawn();
    EventThread third(u"third"_s);
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    QCOMPARE(isle->eval(u"return counter.threadName"_s), QVariant(u"main"_s));
    counter.moveToThread(third.thread());
    QCOMPARE(isle->eval(u"return counter.threadName"_s), QVariant(u"third"_s));
    runIn(&counter, [&] { counter.moveToThread(QCoreApplication::instance()->thread()); });
    QCOMPARE(isle->eval(u"return counter.threadName"_s), QVariant(u"main"_s));
}

void tst_Objects::connectRunsHandlerAsRequest()
{
    QIsleOptions options;
    options.threadName = u"lua"_s;
    auto isle = QIsle::spawn({}, options);
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    isle->eval(u"got = {} conn = counter.pinged:connect(function(text, n) "
               "got[#got + 1] = text .. n .. (coroutine.isyieldable() and '' or '') end)"_s);
    counter.emitPinged(u"a"_s, 1);
    counter.emitPinged(u"b"_s, 2);
    QTRY_COMPARE_WITH_TIMEOUT(isle->eval(u"return #got"_s), QVariant(qlonglong(2)), 5000);
    QCOMPARE(isle->eval(u"return table.concat(got, ' ')"_s), QVariant(u"a1 b2"_s));
    QCOMPARE(isle->eval(u"return conn:connected()"_s), QVariant(true));
    isle->eval(u"conn:disconnect() conn:disconnect()"_s); // idempotent
    QCOMPARE(isle->eval(u"return conn:connected()"_s), QVariant(false));
    counter.emitPinged(u"c"_s, 3);
    QTest::qWait(50);
    QCOMPARE(isle->eval(u"return #got"_s), QVariant(qlonglong(2)));
    // A connection lasts while its Lua handle is garbage.
    isle->eval(u"n = 0 counter.valueChanged:connect(function() n = n + 1 end) collectgarbage() collectgarbage()"_s);
    counter.setValue(1);
    QTRY_COMPARE_WITH_TIMEOUT(isle->eval(u"return n"_s), QVariant(qlonglong(1)), 5000);
}

void tst_Objects::handlerFailureIsReported()
{
    auto isle = QIsle::spawn();
    QSignalSpy failed(isle.get(), &QIsle::handlerFailed);
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    isle->eval(u"counter.valueChanged:connect(function(v) error('handler broke on ' .. v) end)"_s);
    counter.setValue(4);
    QVERIFY(failed.wait(5000));
    const QVariant reported = failed.at(0).at(0);
    QCOMPARE(reported.metaType(), QMetaType::fromType<QIsleError>());
    const QIsleError error = *static_cast<const QIsleError *>(reported.constData());
    QCOMPARE(error.kind(), QIsleError::Kind::Runtime);
    QVERIFY2(error.message().contains(u"handler broke on 4"_s), qPrintable(error.message()));
    // The isle serves on.
    QCOMPARE(isle->eval(u"return 1"_s), QVariant(qlonglong(1)));
}

void tst_Objects::connectionEnds()
{
    auto isle = QIsle::spawn();
    auto *counter = new Counter;
    isle->exposeObject(u"counter"_s, counter);
    isle->eval(u"n = 0 conn = counter.valueChanged:connect(function() n = n + 1 end)"_s);
    counter->setValue(1);
    QTRY_COMPARE_WITH_TIMEOUT(isle->eval(u"return n"_s), QVariant(qlonglong(1)), 5000);
    delete counter;
    QTRY_COMPARE_WITH_TIMEOUT(isle->eval(u"return conn:connected()"_s), QVariant(false), 5000);
    isle->eval(u"conn:disconnect()"_s); // harmless after the object died
}

void tst_Objects::connectionEndsAtShutdown()
{
    auto isle = QIsle::spawn();
    QSignalSpy failed(isle.get(), &QIsle::handlerFailed);
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    isle->eval(u"counter.valueChanged:connect(function() end)"_s);
    isle->shutdown();
    counter.setValue(5); // nothing to run it: no handler, no failure
    QTest::qWait(50);
    QCOMPARE(failed.size(), 0);
    isle.reset();
    counter.setValue(6); // the isle is gone: still nothing
}

void tst_Objects::signalFromManyThreads()
{
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    isle->eval(u"sum = 0 calls = 0 counter.pinged:connect(function(_, n) sum = sum + n calls = calls + 1 end)"_s);
    constexpr int Threads = 4, PerThread = 200;
    std::vector<std::thread> threads;
    for (int t = 0; t < Threads; ++t) {
        threads.emplace_back([&counter, t] {
            for (int i = 0; i < PerThread; ++i)
                Q_EMIT counter.pinged(u"x"_s, t + 1);
        });
    }
    for (auto &t : threads)
        t.join();
    QTRY_COMPARE_WITH_TIMEOUT(isle->eval(u"return calls"_s), QVariant(qlonglong(Threads * PerThread)), 20000);
    QCOMPARE(isle->eval(u"return sum"_s), QVariant(qlonglong(PerThread * (1 + 2 + 3 + 4))));
}

void tst_Objects::waitForSignal()
{
    auto isle = QIsle::spawn();
    EventThread third(u"third"_s);
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    // Emitted from another thread while the script waits.
    std::thread emitter([&counter] {
        QThread::msleep(50);
        Q_EMIT counter.pinged(u"late"_s, 7);
    });
    const QVariant result = isle->eval(u"local ok, text, n = counter.pinged:wait(5000) return {ok, text, n}"_s);
    emitter.join();
    QCOMPARE(result, QVariant(QVariantList{true, u"late"_s, qlonglong(7)}));
}

void tst_Objects::waitTimesOut()
{
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    QElapsedTimer timer;
    timer.start();
    QCOMPARE(isle->eval(u"return select('#', counter.pinged:wait(60)), (counter.pinged:wait(10))"_s),
             QVariant(qlonglong(1)));
    QVERIFY(timer.elapsed() >= 60);
    // A canceled request stops waiting at once.
    auto job = isle->spawnEval(u"counter.pinged:wait()"_s);
    QTest::qWait(30);
    job.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(job.isFinished(), 2000);
}

void tst_Objects::emitFromLua()
{
    auto isle = QIsle::spawn();
    Counter counter;
    QSignalSpy pinged(&counter, &Counter::pinged);
    isle->exposeObject(u"counter"_s, &counter);
    isle->eval(u"counter.pinged:emit('hi', 3)"_s);
    QCOMPARE(pinged.size(), 1);
    QCOMPARE(pinged.at(0).at(0), QVariant(u"hi"_s));
    QCOMPARE(pinged.at(0).at(1), QVariant(3));
    QVERIFY_THROWS_EXCEPTION(QIsleError, isle->eval(u"counter.pinged:emit('hi')"_s));
    QCOMPARE(isle->eval(u"return tostring(counter.pinged)"_s), QVariant(u"signal Counter.pinged(QString,int)"_s));
}

void tst_Objects::waitWhereLuaCannotYield()
{
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    const QVariant message = isle->eval(
            u"local ok, e = pcall(table.sort, {2, 1}, function(a, b) counter.pinged:wait(10) return a < b end) return e"_s);
    QVERIFY2(message.toString().contains(u"cannot wait here"_s), qPrintable(message.toString()));
}

void tst_Objects::waitForAnotherRequestsEmission()
{
    // An object of the Lua thread: one request waits for its signal (the
    // Lua thread is free meanwhile), another emits it.
    QIsleOptions options;
    options.maxConcurrentRequests = 0;
    auto isle = QIsle::spawn({}, options);
    auto *counter = qvariant_cast<Counter *>(isle->exec([](lua_State *) { return QVariant::fromValue(new Counter); }));
    isle->exposeObject(u"counter"_s, counter);
    QFuture<QVariant> waiting = isle->spawnEval(u"local ok, text, n = counter.pinged:wait(5000) return {ok, text, n}"_s);
    QTest::qWait(20);
    QCOMPARE(isle->eval(u"counter.pinged:emit('from B', 2) return true"_s), QVariant(true));
    QCOMPARE(QIsle::waitFor(waiting), QVariant(QVariantList{true, u"from B"_s, qlonglong(2)}));
    isle->exec([counter](lua_State *) { delete counter; return QVariant(); });
}

void tst_Objects::destroyedSignal()
{
    auto isle = QIsle::spawn();
    auto *counter = new Counter;
    counter->setObjectName(u"dying"_s);
    isle->exposeObject(u"counter"_s, counter);
    isle->eval(u"seen = nil counter.destroyed:connect(function(o) seen = tostring(o) end)"_s);
    delete counter;
    QTRY_VERIFY_WITH_TIMEOUT(isle->eval(u"return seen"_s).isValid(), 5000);
    QVERIFY2(isle->eval(u"return seen"_s).toString().endsWith(u"destroyed)"_s),
             qPrintable(isle->eval(u"return seen"_s).toString()));
}

void tst_Objects::signalArgumentsThatAreObjects()
{
    auto isle = QIsle::spawn();
    Counter counter;
    Counter other;
    other.setObjectName(u"other"_s);
    isle->exposeObject(u"counter"_s, &counter);
    isle->exposeObject(u"other"_s, &other);
    isle->eval(u"same = nil counter.handedOver:connect(function(o) same = rawequal(o, other) and o.objectName end)"_s);
    Q_EMIT counter.handedOver(&other);
    QTRY_COMPARE_WITH_TIMEOUT(isle->eval(u"return same"_s), QVariant(u"other"_s), 5000);
}

void tst_Objects::hammerPropertiesOfMainThreadObject()
{
    // Several threads send many requests that read and write properties of
    // an object of the main thread, which runs its event loop meanwhile.
    auto isle = QIsle::spawn();
    Counter counter;
    isle->exposeObject(u"counter"_s, &counter);
    isle->eval(u"function bump(n) for i = 1, n do counter.value = counter.value + 1 end return counter.value end"_s);
    const double scale = qEnvironmentVariableIsSet("QISLE_STRESS_SCALE")
            ? qEnvironmentVariable("QISLE_STRESS_SCALE").toDouble() : 1.0;
    const int threads = 4, requests = qMax(5, int(50 * scale)), perRequest = 20;
    std::atomic<int> done{0};
    std::vector<std::thread> callers;
    QList<QFuture<QVariant>> futures;
    QMutex futuresMutex;
    for (int t = 0; t < threads; ++t) {
        callers.emplace_back([&] {
            for (int r = 0; r < requests; ++r) {
                auto f = isle->spawnCall(u"bump"_s, {perRequest});
                QMutexLocker lock(&futuresMutex);
                futures.append(f);
            }
            ++done;
        });
    }
    // This thread runs its event loop meanwhile, as a GUI thread would.
    QElapsedTimer timer;
    timer.start();
    const auto allFinished = [&] {
        if (done.load() < threads)
            return false;
        QMutexLocker lock(&futuresMutex);
        return std::all_of(futures.begin(), futures.end(), [](const QFuture<QVariant> &f) { return f.isFinished(); });
    };
    while (!allFinished() && timer.elapsed() < 120000)
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 50);
    for (auto &t : callers)
        t.join();
    QVERIFY(allFinished());
    QCOMPARE(counter.value(), threads * requests * perRequest);
}

QTEST_GUILESS_MAIN(tst_Objects)
#include "tst_objects.moc"
