// isle.channel and isle.select: rendezvous and buffered channels, close,
// try_*, len/cap, sharing between requests, select, stops at channel waits,
// bad input.
#include <QIsle/QIsle>
#include <QIsle/QIsleLua>

#include <QtCore/QElapsedTimer>
#include <QtTest/QtTest>

namespace {

QIsleError errorOf(QFuture<QVariant> future)
{
    try {
        QIsle::waitFor(future);
    } catch (const QIsleError &e) {
        return e;
    }
    return QIsleError(QIsleError::Kind::Runtime, QStringLiteral("<no error>"));
}

std::unique_ptr<QIsle> isleWith(int maxConcurrentRequests = 1)
{
    QIsleOptions options;
    options.maxConcurrentRequests = maxConcurrentRequests;
    return QIsle::spawn({}, options);
}

} // namespace

class tst_Channels : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void scripts_data();
    void scripts();
    void sharedBetweenRequests();
    void selectTimeout();
    void cannotWaitHere_data();
    void cannotWaitHere();
    void stopWhileWaiting_data();
    void stopWhileWaiting();
    void badInput_data();
    void badInput();
    void producerConsumer();
};

void tst_Channels::scripts_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QVariant>("expected");

    // A fresh isle each: the metatables are made by the first channel and
    // the first task (an idle isle holds neither), whole and locked.
    QTest::addRow("first channel and first task get their metatables")
            << "local before = select(2, pcall(isle.select, 5))\n"
               "local ch = isle.channel(1)\n"
               "local t = isle.spawn(function() return ch:recv() * 2 end)\n"
               "ch:send(21)\n"
               "local after = select(2, pcall(isle.select, 5))\n"
               "return table.concat({getmetatable(ch), getmetatable(t), tostring(t:join()), tostring(t:done()),\n"
               "                     ch:len() .. '/' .. ch:cap(), tostring(before == after)}, ' ')"
            << QVariant(QStringLiteral("locked locked 42 true 0/1 true"));
    QTest::addRow("rendezvous hands values over in order")
            << "local ch = isle.channel()\n"
               "local got = {}\n"
               "local consumer = isle.spawn(function() for i = 1, 5 do got[#got + 1] = ch:recv() end end)\n"
               "for i = 1, 5 do ch:send(i * 10) end consumer:join()\n"
               "return table.concat(got, ',')"
            << QVariant(QStringLiteral("10,20,30,40,50"));
    QTest::addRow("rendezvous send waits for a receiver")
            << "local ch, log = isle.channel(), {}\n"
               "local t = isle.spawn(function() ch:send('x') log[#log + 1] = 'sent' end)\n"
               "isle.sleep(10) log[#log + 1] = 'before recv'\n"
               "log[#log + 1] = ch:recv() t:join()\n"
               "return table.concat(log, ',')"
            << QVariant(QStringLiteral("before recv,x,sent"));
    QTest::addRow("buffered sends without waiting")
            << "local ch = isle.channel(2) ch:send(1) ch:send(2)\n"
               "return ch:len() .. ' ' .. ch:cap() .. ' ' .. tostring(ch:try_send(3))"
            << QVariant(QStringLiteral("2 2 false"));
    QTest::addRow("full buffer: send waits, then its value follows")
            << "local ch = isle.channel(1) ch:send('a')\n"
               "local t = isle.spawn(function() ch:send('b') end)\n"
               "isle.sleep(0)\n"
               "local r = {ch:len()} r[#r + 1] = ch:recv() r[#r + 1] = ch:len() r[#r + 1] = ch:recv() t:join()\n"
               "return table.concat(r, ' ')"
            << QVariant(QStringLiteral("1 a 1 b"));
    QTest::addRow("close drains, then nil false")
            << "local ch = isle.channel(3) ch:send(1) ch:send(2) ch:close() ch:close()\n"
               "local a, aok = ch:recv() local b = ch:recv() local c, cok = ch:recv()\n"
               "return a .. tostring(aok) .. b .. tostring(c) .. tostring(cok)"
            << QVariant(QStringLiteral("1true2nilfalse"));
    QTest::addRow("close wakes receivers")
            << "local ch = isle.channel()\n"
               "local t = isle.spawn(function() return ch:recv() end)\n"
               "isle.sleep(0) ch:close() local v, ok = t:join() return tostring(v) .. tostring(ok)"
            << QVariant(QStringLiteral("nilfalse"));
    QTest::addRow("send on a closed channel")
            << "local ch = isle.channel(5) ch:close() local ok, e = pcall(ch.send, ch, 1)\n"
               "return tostring(ok) .. ' ' .. tostring(e:find('closed') ~= nil) .. ' ' .. tostring(ch:try_send(1))"
            << QVariant(QStringLiteral("false true false"));
    QTest::addRow("send waiting when the channel closes")
            << "local ch = isle.channel()\n"
               "local t = isle.spawn(function() return pcall(ch.send, ch, 1) end)\n"
               "isle.sleep(0) ch:close() local ok, e = t:join()\n"
               "return tostring(ok) .. ' ' .. tostring(e:find('closed') ~= nil)"
            << QVariant(QStringLiteral("false true"));
    QTest::addRow("nil is a value")
            << "local ch = isle.channel(1) ch:send(nil) local v, ok = ch:recv() return tostring(v) .. tostring(ok)"
            << QVariant(QStringLiteral("niltrue"));
    QTest::addRow("try_send on rendezvous: only to a waiting receiver")
            << "local ch = isle.channel()\n"
               "local first = ch:try_send(1)\n"
               "local t = isle.spawn(function() return ch:recv() end) isle.sleep(0)\n"
               "local second = ch:try_send(2)\n"
               "return tostring(first) .. tostring(second) .. t:join() .. ch:len()"
            << QVariant(QStringLiteral("falsetrue20"));
    QTest::addRow("try_recv takes from a waiting sender")
            << "local ch = isle.channel()\n"
               "local empty, emptyOk = ch:try_recv()\n"
               "local t = isle.spawn(function() ch:send('s') return 'sender done' end) isle.sleep(0)\n"
               "local v, ok = ch:try_recv()\n"
               "return tostring(empty) .. tostring(emptyOk) .. v .. tostring(ok) .. t:join()"
            << QVariant(QStringLiteral("nilfalsestruesender done"));
    QTest::addRow("select: first ready in list order")
            << "local a, b, c = isle.channel(1), isle.channel(1), isle.channel(1)\n"
               "b:send('B') c:send('C')\n"
               "local i, v, ok = isle.select({a, b, c}) return i .. v .. tostring(ok)"
            << QVariant(QStringLiteral("2Btrue"));
    QTest::addRow("select: closed and drained")
            << "local a, b = isle.channel(), isle.channel() b:close()\n"
               "local i, v, ok = isle.select({a, b}) return i .. tostring(v) .. tostring(ok)"
            << QVariant(QStringLiteral("2nilfalse"));
    QTest::addRow("select: listed twice counts at its first index")
            << "local a, b = isle.channel(1), isle.channel(1) a:send(1)\n"
               "return (isle.select({b, a, a}))"
            << QVariant(qlonglong(2));
    QTest::addRow("select waits for a sender")
            << "local a, b = isle.channel(), isle.channel()\n"
               "isle.spawn(function() isle.sleep(5) b:send('late') end)\n"
               "local i, v = isle.select({a, b}) return i .. v .. tostring(a:try_send(1))"
            << QVariant(QStringLiteral("2latefalse"));
    QTest::addRow("a waiting select counts for try_send")
            << "local a = isle.channel()\n"
               "local t = isle.spawn(function() return select(2, isle.select({a})) end) isle.sleep(0)\n"
               "return tostring(a:try_send('t')) .. t:join()"
            << QVariant(QStringLiteral("truet"));
    QTest::addRow("select polls with timeout 0")
            << "local a = isle.channel() return tostring(isle.select({a}, 0)) .. tostring(isle.select({a}, -1))"
            << QVariant(QStringLiteral("nilnil"));
    QTest::addRow("select takes from a waiting sender when polling")
            << "local a = isle.channel()\n"
               "local t = isle.spawn(function() a:send(5) return 'ok' end) isle.sleep(0)\n"
               "local i, v = isle.select({a}, 0) return i + v .. t:join()"
            << QVariant(QStringLiteral("6ok"));
    QTest::addRow("channels carry any Lua value")
            << "local ch = isle.channel(3) local f = function() return 'fn' end local t = {}\n"
               "ch:send(f) ch:send(t) ch:send(coroutine.create(print))\n"
               "return (ch:recv()() .. tostring(ch:recv() == t) .. type(ch:recv()))"
            << QVariant(QStringLiteral("fntruethread"));
    QTest::addRow("capacity read as an integer")
            << "return isle.channel(2.0):cap() + isle.channel('3'):cap() + isle.channel():cap()"
            << QVariant(qlonglong(5));
    QTest::addRow("a waiter inside a script coroutine")
            << "local ch = isle.channel()\n"
               "local gen = coroutine.wrap(function() while true do local v, ok = ch:recv() if not ok then return end coroutine.yield(v) end end)\n"
               "isle.spawn(function() for i = 1, 3 do ch:send(i) end ch:close() end)\n"
               "local s = 0 for v in gen do s = s + v end return s"
            << QVariant(qlonglong(6));
}

void tst_Channels::scripts()
{
    QFETCH(QString, chunk);
    QFETCH(QVariant, expected);
    for (int max : {1, 0}) {
        auto isle = isleWith(max);
        QCOMPARE(isle->eval(chunk), expected);
    }
}

void tst_Channels::sharedBetweenRequests()
{
    auto isle = isleWith(0);
    isle->eval(QStringLiteral("shared = isle.channel()"));
    QFuture<QVariant> consumer = isle->spawnEval(QStringLiteral(
            "local s = 0 while true do local v, ok = shared:recv() if not ok then return s end s = s + v end"));
    QFuture<QVariant> producer = isle->spawnEval(QStringLiteral(
            "for i = 1, 100 do shared:send(i) end shared:close() return 'sent'"));
    QCOMPARE(QIsle::waitFor(producer), QVariant(QStringLiteral("sent")));
    QCOMPARE(QIsle::waitFor(consumer), QVariant(qlonglong(5050)));
}

void tst_Channels::selectTimeout()
{
    auto isle = isleWith();
    QElapsedTimer timer;
    timer.start();
    QCOMPARE(isle->eval(QStringLiteral("return isle.select({isle.channel()}, 50) == nil")), QVariant(true));
    QVERIFY(timer.elapsed() >= 45);
    QVERIFY2(timer.elapsed() < 2000, qPrintable(QString::number(timer.elapsed())));
    // The timed-out select left the channel: a later try_send finds no receiver.
    QCOMPARE(isle->eval(QStringLiteral(
                     "local a = isle.channel() isle.select({a}, 1) return a:try_send(1)")),
             QVariant(false));
}

void tst_Channels::cannotWaitHere_data()
{
    QTest::addColumn<QString>("call");
    QTest::addRow("recv") << "ch:recv()";
    QTest::addRow("send") << "ch:send(1)";
    QTest::addRow("select with a timeout") << "isle.select({ch}, 100)";
    QTest::addRow("select without a timeout") << "isle.select({ch})";
}

void tst_Channels::cannotWaitHere()
{
    QFETCH(QString, call);
    auto isle = isleWith();
    const QIsleError e = errorOf(isle->spawnEval(
            QStringLiteral("ch = isle.channel() table.sort({2, 1}, function(a, b) %1 return a < b end)").arg(call)));
    QVERIFY2(e.message().contains(QStringLiteral("cannot wait here")), qPrintable(e.message()));
    // What needs no wait works there.
    QCOMPARE(isle->eval(QStringLiteral(
                     "local c = isle.channel(1) c:send(4)\n"
                     "local r = {} table.sort({2, 1}, function(a, b) r[#r + 1] = tostring(c:try_send(1)) .. "
                     "tostring(isle.select({c}, 0)) return a < b end) return r[1]")),
             QVariant(QStringLiteral("false1")));
}

void tst_Channels::stopWhileWaiting_data()
{
    QTest::addColumn<QString>("wait");
    QTest::addRow("recv") << "ch:recv()";
    QTest::addRow("send") << "ch:send('lost')";
    QTest::addRow("select") << "isle.select({ch, isle.channel()})";
    QTest::addRow("select with timeout") << "isle.select({ch}, 1e9)";
    QTest::addRow("recv in a task") << "isle.spawn(function() ch:recv() end):join()";
}

void tst_Channels::stopWhileWaiting()
{
    QFETCH(QString, wait);
    auto isle = isleWith(0);
    isle->eval(QStringLiteral("ch = isle.channel()"));
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral("waiting = true ") + wait + QStringLiteral(" reached = true"));
    QTRY_COMPARE(isle->eval(QStringLiteral("return waiting")), QVariant(true));
    QThread::msleep(10);
    f.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 5000);
    QVERIFY(f.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return reached")), QVariant());
    // The stopped waiter left the channel: nothing waits on it now.
    QCOMPARE(isle->eval(QStringLiteral("local v, ok = ch:try_recv() return tostring(ok) .. tostring(ch:try_send(1))")),
             QVariant(QStringLiteral("falsefalse")));
}

void tst_Channels::badInput_data()
{
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QString>("message");
    QTest::addRow("negative capacity") << "isle.channel(-1)" << "capacity must be >= 0";
    QTest::addRow("fractional capacity") << "isle.channel(2.5)" << "number has no integer representation";
    QTest::addRow("table capacity") << "isle.channel({})" << "number expected";
    QTest::addRow("send wrong self") << "local ch = isle.channel(1) ch.send({}, 1)" << "isle.channel expected";
    QTest::addRow("recv wrong self") << "local ch = isle.channel(1) ch.recv(42)" << "isle.channel expected";
    QTest::addRow("close wrong self") << "local ch = isle.channel() ch.close()" << "isle.channel expected";
    QTest::addRow("len wrong self") << "local ch = isle.channel() ch.len('x')" << "isle.channel expected";
    QTest::addRow("send nothing") << "isle.channel(1):send()" << "value expected";
    QTest::addRow("select empty") << "isle.select({})" << "empty list of channels";
    QTest::addRow("select not a table") << "isle.select(isle.channel())" << "table expected";
    QTest::addRow("select non-channel entry") << "isle.select({isle.channel(), 5})" << "entry 2 is not a channel";
    QTest::addRow("select bad timeout") << "isle.select({isle.channel()}, 'soon')" << "number expected";
    QTest::addRow("metatable locked") << "error(getmetatable(isle.channel()))" << "locked";
}

void tst_Channels::badInput()
{
    QFETCH(QString, chunk);
    QFETCH(QString, message);
    auto isle = isleWith();
    const QIsleError e = errorOf(isle->spawnEval(chunk));
    QVERIFY2(e.message().contains(message), qPrintable(e.message()));
    QCOMPARE(isle->eval(QStringLiteral("return 1")), QVariant(qlonglong(1)));
}

void tst_Channels::producerConsumer()
{
    auto isle = isleWith();
    QCOMPARE(isle->eval(QStringLiteral(
                     "local jobs, results = isle.channel(4), isle.channel()\n"
                     "local workers = {}\n"
                     "for w = 1, 3 do workers[w] = isle.spawn(function()\n"
                     "  for job in function() local v, ok = jobs:recv() if ok then return v end end do results:send(job * job) end\n"
                     "end) end\n"
                     "isle.spawn(function() for i = 1, 1000 do jobs:send(i) end jobs:close() end)\n"
                     "local closer = isle.spawn(function() for w = 1, 3 do workers[w]:join() end results:close() end)\n"
                     "local s = 0 while true do local v, ok = results:recv() if not ok then break end s = s + v end\n"
                     "return s")),
             QVariant(qlonglong(1000LL * 1001 * 2001 / 6)));
}

QTEST_GUILESS_MAIN(tst_Channels)
#include "tst_channels.moc"
