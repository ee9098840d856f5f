// Async stress: requests that wait -- for application futures that other
// threads finish, fail or cancel at random moments, for isle.sleep, for
// tasks and for channels -- sent by several caller threads to isles with
// maxConcurrentRequests 0, 1 and 3 (time slices on for two of them), under
// random cancel, suspend/resume and timeouts, while a churn thread makes
// isles, fills them with such requests and destroys them (or shuts them
// down) mid-flight.
//
// What must hold: every future finishes (bounded; a watchdog ends a hang
// with a message); each holds what it must (a canceled one: nothing, or that
// same value); values cross channels in the order they were sent (the scripts
// check, within a request and between requests); no request is lost (each is
// checked); destroying or shutting down an isle finishes every future; the
// isles answer afterwards and their Lua heap stays level.
//
// QISLE_STRESS_SCALE scales the request counts; QISLE_STRESS_SEED repeats a
// run's requests (the seed is printed; the threads' interleaving is not).
#include <QIsle/QIsle>

#include <QtCore/QPromise>
#include <QtTest/QtTest>

#include <QIsle/QIsleLua>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <vector>

#include "stresskit.h"

namespace {

using StressKit::describe;
using StressKit::Failures;
using StressKit::scaled;
using StressKit::Watchdog;
using Clock = std::chrono::steady_clock;

constexpr int CallerThreads = 6;
constexpr int Window = 10; // futures a caller keeps in flight
// A future still pending this long is reported (and the run goes on).
constexpr std::chrono::seconds FinishLimit{60};

// The application's side of async host functions: futures finished by two
// threads of their own, each at its due time, with a value, an exception or
// a cancel (one that finishes at once, or only 80 ms later -- the scheduler
// decides after 50 ms that such a future is canceled).
class Producer
{
public:
    enum class End { Value, Fail, Cancel, CancelLate, FinishCanceled };

    Producer()
    {
        for (int i = 0; i < 2; ++i)
            m_threads.emplace_back([this] { run(); });
    }
    // Finishes what is left at once: every future ends.
    ~Producer()
    {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_wake.notify_all();
        for (std::thread &t : m_threads)
            t.join();
        for (auto &[due, item] : m_items) {
            if (item.end == End::CancelLate)
                item.end = End::Cancel;
            finish(item);
        }
    }

    QFuture<QVariant> later(End end, const QVariant &value, int ms)
    {
        Item item{end, value, std::make_shared<QPromise<QVariant>>()};
        item.promise->start();
        QFuture<QVariant> future = item.promise->future();
        {
            std::lock_guard lock(m_mutex);
            m_items.emplace(Clock::now() + std::chrono::milliseconds(ms), std::move(item));
        }
        m_wake.notify_one();
        return future;
    }

private:
    struct Item
    {
        End end;
        QVariant value;
        std::shared_ptr<QPromise<QVariant>> promise;
    };

    void run()
    {
        std::unique_lock lock(m_mutex);
        while (!m_stop) {
            if (m_items.empty()) {
                m_wake.wait(lock);
                continue;
            }
            if (const auto due = m_items.begin()->first; Clock::now() < due) {
                m_wake.wait_until(lock, due);
                continue;
            }
            Item item = std::move(m_items.extract(m_items.begin()).mapped());
            lock.unlock();
            const bool again = finish(item);
            lock.lock();
            if (again)
                m_items.emplace(Clock::now() + std::chrono::milliseconds(80), std::move(item));
        }
    }

    // Ends the item's future; true when it must come back later.
    static bool finish(Item &item)
    {
        QPromise<QVariant> &p = *item.promise;
        switch (item.end) {
        case End::Value:
            p.addResult(item.value);
            break;
        case End::Fail:
            p.setException(std::make_exception_ptr(
                    std::runtime_error("app failure " + item.value.toString().toStdString())));
            break;
        case End::Cancel:
            p.future().cancel();
            break;
        case End::CancelLate:
            p.future().cancel();
            item.end = End::FinishCanceled;
            return true;
        case End::FinishCanceled:
            break;
        }
        p.finish();
        return false;
    }

    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::multimap<Clock::time_point, Item> m_items; // m_mutex
    bool m_stop = false;                            // m_mutex
    std::vector<std::thread> m_threads;
};

// The scripts' library, loaded by every stressed isle's init.
constexpr char StressLib[] = R"lua(
function add(a, b) return a + b end
pipes = {} -- channels shared between requests, by pair id
stress = {}

-- k tasks, each awaiting an application future: sum of i * x
function stress.fanout(k, x, ms)
  local tasks = {}
  for i = 1, k do
    tasks[i] = isle.spawn(function(i)
      if i % 2 == 0 then isle.sleep(ms) end
      return app.later('ok', i * x, ms)
    end, i)
  end
  local sum = 0
  for i = k, 1, -1 do sum = sum + tasks[i]:join() end
  return sum
end

-- a producer task and this consumer over one channel: 1..n in order
function stress.pipeline(n, cap, ms)
  local ch = isle.channel(cap)
  isle.spawn(function()
    for i = 1, n do
      ch:send(i)
      if i % 4 == 0 then isle.sleep(ms) end
    end
    ch:close()
  end)
  local want, sum = 1, 0
  while true do
    local v, ok = ch:recv()
    if not ok then break end
    if v ~= want then error(('pipeline: got %s, expected %d'):format(tostring(v), want)) end
    want, sum = want + 1, sum + v
  end
  return sum
end

-- two producer tasks, isle.select over both: each channel's values in order
function stress.select2(n, ms)
  local a, b = isle.channel(), isle.channel(2)
  local base = {[a] = 0, [b] = 1000}
  for ch, first in pairs(base) do
    isle.spawn(function()
      for i = 1, n do
        ch:send(first + i)
        if i % 3 == 0 then isle.sleep(ms) end
      end
      ch:close()
    end)
  end
  local open, want, count = {a, b}, {[a] = 1, [b] = 1}, 0
  while #open > 0 do
    local i, v, ok = isle.select(open, 60000)
    if i == nil then error('select2: timed out') end
    local ch = open[i]
    if ok then
      if v ~= base[ch] + want[ch] then
        error(('select2: got %s, expected %d'):format(tostring(v), base[ch] + want[ch]))
      end
      want[ch], count = want[ch] + 1, count + 1
    else
      table.remove(open, i)
    end
  end
  return count
end

-- a task canceled at its wait: join says canceled, its <close> ran (the
-- task may be paused by a time slice before it made it: wait until it did)
function stress.cancelTask(ms)
  local closed, armed = false, false
  local t = isle.spawn(function()
    local guard <close> = setmetatable({}, {__close = function() closed = true end})
    armed = true
    isle.sleep(1e9)
  end)
  isle.sleep(ms)
  while not armed do isle.sleep(0) end
  t:cancel()
  local ok, m = pcall(t.join, t)
  return not ok and tostring(m):find('canceled', 1, true) ~= nil and t:done() and closed
end

-- an unjoined task's error fails the request; the rest is canceled
function stress.unjoined(x, ms)
  isle.spawn(function() isle.sleep(ms) error('task boom ' .. x) end)
  isle.spawn(function() isle.sleep(1e9) end)
  isle.sleep(1e9)
end

-- waits inside the script's own coroutine and inside pcall
function stress.wrapped(x, ms)
  local co = coroutine.wrap(function(a)
    coroutine.yield(app.later('ok', a, ms))
    local ok, v = pcall(app.later, 'ok', a + 1, ms)
    return v
  end)
  local first = co(x)
  return first + co()
end

-- CPU-bound work (time slices take turns)
function stress.cpu(n)
  local s = 0
  for i = 1, n do s = s + i end
  return s
end

function stress.cpuTasks(k, n)
  local tasks = {}
  for i = 1, k do tasks[i] = isle.spawn(stress.cpu, n) end
  local sum = 0
  for i = 1, k do sum = sum + tasks[i]:join() end
  return sum
end

-- A channel shared by two requests: pipeSend sends 1..n, pipeRecv checks the
-- order and counts. An exec request made it before either started (with time
-- slices a script may be paused between any two instructions: "make it
-- unless it exists" in Lua could make two). A stopped one closes it so that
-- its partner does not wait for ever (a request canceled before it ran
-- cannot: the test's pipeClose request does).
function stress.newPipe(id, cap)
  pipes[id] = isle.channel(cap)
end

local function pipe(id)
  return pipes[id] or error('pipe ' .. id .. ' was never made')
end

function stress.pipeSend(id, n)
  local ch = pipe(id)
  local guard <close> = setmetatable({}, {__close = function() ch:close() end})
  for i = 1, n do ch:send(i) end
  return n
end

function stress.pipeRecv(id, n)
  local ch = pipe(id)
  local guard <close> = setmetatable({}, {__close = function(_, err) if err ~= nil then ch:close() end end})
  local want = 1
  while true do
    local v, ok = ch:recv()
    if not ok then break end
    if v ~= want then error(('pipe %d: got %s, expected %d'):format(id, tostring(v), want)) end
    want = want + 1
  end
  return want - 1
end

function stress.pipeClose(id)
  pipe(id):close()
  return true
end
)lua";

QIsle::Init stressInit()
{
    return [](lua_State *L) {
        if (luaL_loadbufferx(L, StressLib, sizeof StressLib - 1, "=stresslib", "t") != LUA_OK)
            lua_error(L);
        lua_call(L, 0, 0);
    };
}

// The async host functions every stressed isle has.
void registerHost(QIsle *isle, Producer *producer)
{
    // app.later(kind, value, ms): kind 'ok', 'fail', 'cancel' or 'late'
    // (canceled, finished 80 ms later).
    isle->registerAsyncFunction(QStringLiteral("app.later"), [producer](const QVariantList &args) {
        const QString kind = args.value(0).toString();
        const Producer::End end = kind == QLatin1String("fail")     ? Producer::End::Fail
                                  : kind == QLatin1String("cancel") ? Producer::End::Cancel
                                  : kind == QLatin1String("late")   ? Producer::End::CancelLate
                                                                    : Producer::End::Value;
        return producer->later(end, args.value(1), args.value(2).toInt());
    });
    isle->registerAsyncFunction(QStringLiteral("app.ready"), [](const QVariantList &args) {
        QPromise<QVariant> promise;
        promise.start();
        promise.addResult(args.value(0));
        promise.finish();
        return promise.future();
    });
    // A child request: it runs while its parent waits, whatever the limit.
    isle->registerAsyncFunction(QStringLiteral("app.child"), [isle](const QVariantList &args) {
        return isle->spawnCall(QStringLiteral("add"), args);
    });
    isle->registerAsyncFunction(QStringLiteral("app.throws"), [](const QVariantList &args) -> QFuture<QVariant> {
        throw std::runtime_error("async throw " + args.value(0).toString().toStdString());
    });
}

std::unique_ptr<QIsle> spawnStressed(Producer *producer, int maxConcurrent, int sliceMs,
                                     std::chrono::milliseconds shutdownTimeout = std::chrono::milliseconds(2000))
{
    QIsleOptions options;
    options.maxConcurrentRequests = maxConcurrent;
    options.timeSlice = std::chrono::milliseconds(sliceMs);
    options.shutdownTimeout = shutdownTimeout;
    std::unique_ptr<QIsle> isle = QIsle::spawn(stressInit(), options);
    registerHost(isle.get(), producer);
    return isle;
}

// What a request must end with, unless it was canceled.
struct Expected
{
    QVariant value;
    std::optional<QIsleError::Kind> error;
    QString messagePart; // for errors
    QString what;        // the request, for messages
    int emits = 0;       // results 1..emits must be 1..emits
    qlonglong upTo = -1; // a pair's consumer: with its partner stopped, any count 0..upTo
};

enum class Action { None, Cancel, SuspendResume, SuspendCancel };

struct InFlight
{
    QFuture<QVariant> future;
    Expected expected;
    Action action = Action::None;
    int actAt = 0;          // the caller's step at which the action starts
    bool suspended = false;
    bool wasSuspended = false; // for messages
    bool canceled = false;  // canceled by us, or by the isle's end
    bool isleGone = false;  // its isle was destroyed or shut down with it in flight
    bool lenient = false;   // its pair's partner was stopped: a short count or 'closed' is fine
    bool fixed = false;     // neither canceled nor suspended (a pair's setup)
    qlonglong pair = 0;     // pipeSend/pipeRecv: the channel's id
};

bool finishedWithin(const QFuture<QVariant> &future, std::chrono::milliseconds limit)
{
    const auto end = Clock::now() + limit;
    std::chrono::microseconds pause{20};
    while (!future.isFinished()) {
        if (Clock::now() >= end)
            return false;
        std::this_thread::sleep_for(pause);
        pause = qMin(pause * 2, std::chrono::microseconds(2000));
    }
    return true;
}

bool valueMatches(const InFlight &f, const QVariant &v)
{
    const Expected &e = f.expected;
    if (f.lenient && e.upTo >= 0)
        return v.typeId() == QMetaType::LongLong && v.toLongLong() >= 0 && v.toLongLong() <= e.upTo;
    return v == e.value;
}

// Checks a finished future against what it should hold. A canceled one may
// hold its result (it finished first) or nothing; what it holds must be right.
void check(InFlight &f, Failures &failures)
{
    const Expected &e = f.expected;
    if (!finishedWithin(f.future, FinishLimit)) {
        failures.add(QStringLiteral("%1: not finished after %2 s (was suspended %3, canceled %4, lenient %5, "
                                    "future: started %6 running %7 suspending %8 suspended %9 canceled %10)")
                             .arg(e.what).arg(FinishLimit.count()).arg(f.wasSuspended).arg(f.canceled).arg(f.lenient)
                             .arg(f.future.isStarted()).arg(f.future.isRunning()).arg(f.future.isSuspending())
                             .arg(f.future.isSuspended()).arg(f.future.isCanceled()));
        return;
    }
    try {
        f.future.waitForFinished();
        if (f.future.isCanceled()) {
            if (!f.canceled)
                failures.add(QStringLiteral("%1: canceled, but nobody canceled it").arg(e.what));
            else if (f.future.resultCount() > 0 && (e.error || !valueMatches(f, f.future.result())))
                failures.add(QStringLiteral("%1: canceled late with wrong result %2").arg(e.what, describe(f.future.result())));
            return;
        }
        const QString got = f.future.resultCount() ? describe(f.future.result()) : QStringLiteral("nothing");
        if (e.error) {
            failures.add(QStringLiteral("%1: expected error %2, got %3").arg(e.what, QIsleError::kindName(*e.error), got));
            return;
        }
        if (f.future.resultCount() == 0 || !valueMatches(f, f.future.result())) {
            failures.add(QStringLiteral("%1: expected %2, got %3").arg(e.what, describe(e.value), got));
            return;
        }
        for (int i = 1; i <= e.emits; ++i) {
            if (!f.future.isResultReadyAt(i) || f.future.resultAt(i) != QVariant(qlonglong(i)))
                failures.add(QStringLiteral("%1: emit %2 missing or wrong").arg(e.what).arg(i));
        }
    } catch (const QIsleError &error) {
        if (f.canceled && error.kind() == QIsleError::Kind::Cancelled)
            return;
        // A request running while its isle goes may also fail with the
        // shutdown (a child request refused mid-way).
        if (f.isleGone && (error.kind() == QIsleError::Kind::Shutdown || error.message().contains(QLatin1String("shut down"))))
            return;
        // Its partner stopped: the shared channel was closed under it.
        if (f.lenient && error.kind() == QIsleError::Kind::Runtime && error.message().contains(QLatin1String("closed")))
            return;
        if (!e.error || error.kind() != *e.error || !error.message().contains(e.messagePart))
            failures.add(QStringLiteral("%1: unexpected %2 error '%3'")
                                 .arg(e.what, QIsleError::kindName(error.kind()), error.message()));
    } catch (...) {
        failures.add(QStringLiteral("%1: a non-QIsleError exception").arg(e.what));
    }
}

// Random waiting requests of every kind, with what they must answer. On an
// isle without a limit (pairs true) two requests may share a channel: then
// both are returned, the sender first.
std::vector<InFlight> submitRandom(QIsle *isle, QRandomGenerator &rng, bool pairs, qlonglong &nextPair)
{
    const qint64 a = rng.bounded(-1000, 1000);
    const qint64 b = rng.bounded(-1000, 1000);
    const int ms = int(rng.bounded(0, 4));
    std::vector<InFlight> out(1);
    out.reserve(3); // f stays valid while a pair adds its two
    InFlight *f = &out.front();
    Expected *e = &f->expected;
    const auto eval = [&](const QString &code) {
        e->what = code;
        f->future = isle->spawnEval(code);
    };
    const auto call = [&](const char *function, const QVariantList &args) {
        e->what = QStringLiteral("%1%2").arg(QLatin1String(function), describe(args));
        f->future = isle->spawnCall(QLatin1String(function), args);
    };
    const auto fails = [&](QIsleError::Kind kind, const QString &part) {
        e->error = kind;
        e->messagePart = part;
    };
    using K = QIsleError::Kind;
    // QISLE_STRESS_KINDS (a bit mask of the cases below) narrows a run down
    // to some kinds of requests, to find which ones a failure needs.
    static const quint64 kinds = [] {
        bool ok = false;
        const quint64 mask = qEnvironmentVariable("QISLE_STRESS_KINDS").toULongLong(&ok, 0);
        return ok && mask ? mask : ~quint64(0);
    }();
    quint32 kind;
    do {
        kind = rng.bounded(pairs ? 26 : 24);
    } while (!(kinds & (quint64(1) << qMin(kind, 24u))) && (kinds & ((quint64(1) << (pairs ? 25 : 24)) - 1)));
    switch (kind) {
    case 0:
        eval(QStringLiteral("isle.sleep(%1) return %2").arg(ms).arg(a));
        e->value = qlonglong(a);
        break;
    case 1:
        eval(QStringLiteral("return app.later('ok', %1, %2)").arg(a).arg(ms));
        e->value = qlonglong(a);
        break;
    case 2:
        eval(QStringLiteral("return app.later('fail', %1, %2)").arg(a).arg(ms));
        fails(K::Callback, QStringLiteral("app failure %1").arg(a));
        break;
    case 3:
        eval(QStringLiteral("local ok, m = pcall(app.later, 'fail', %1, %2)\n"
                            "return not ok and m:find('app failure %1', 1, true) ~= nil").arg(a).arg(ms));
        e->value = true;
        break;
    case 4:
        eval(QStringLiteral("local ok, m = pcall(app.later, '%1', 0, %2)\n"
                            "return not ok and m:find('canceled', 1, true) ~= nil")
                     .arg(rng.bounded(2) ? QStringLiteral("cancel") : QStringLiteral("late")).arg(ms));
        e->value = true;
        break;
    case 5:
        eval(QStringLiteral("return app.later('cancel', %1, %2)").arg(a).arg(ms));
        fails(K::Callback, QStringLiteral("canceled"));
        break;
    case 6:
        eval(QStringLiteral("return app.ready(%1) + app.ready(%2)").arg(a).arg(b));
        e->value = qlonglong(a + b);
        break;
    case 7:
        eval(QStringLiteral("return app.throws(%1)").arg(a));
        fails(K::Callback, QStringLiteral("async throw %1").arg(a));
        break;
    case 8:
        eval(QStringLiteral("return app.child(%1, %2)").arg(a).arg(b));
        e->value = qlonglong(a + b);
        break;
    case 9:
        eval(QStringLiteral("return isle.select({isle.channel(), isle.channel(1)}, %1) == nil").arg(ms + 1));
        e->value = true;
        break;
    case 10:
        eval(QStringLiteral("local ok, m = pcall(table.sort, {3, 1, 2}, function(x, y)\n"
                            "  app.later('ok', 1, %1) return x < y end)\n"
                            "return not ok and m:find('cannot wait here', 1, true) ~= nil").arg(ms + 100));
        e->value = true;
        break;
    case 11: {
        QIsleRequestOptions options;
        options.timeout = std::chrono::milliseconds(rng.bounded(2, 15));
        e->what = rng.bounded(2) ? QStringLiteral("isle.sleep(1e9)") : QStringLiteral("return app.later('ok', 1, 1000)");
        e->what += QStringLiteral(" -- timeout %1 ms").arg(options.timeout.count());
        f->future = isle->spawnEval(e->what, options);
        fails(K::Timeout, QString());
        break;
    }
    case 12:
        eval(QStringLiteral("for i = 1, 3 do isle.emit(i) isle.sleep(%1) end return %2").arg(ms).arg(a));
        e->value = qlonglong(a);
        e->emits = 3;
        break;
    case 13: {
        const qint64 k = rng.bounded(1, 7);
        call("stress.fanout", {k, a, ms});
        e->value = qlonglong(a * k * (k + 1) / 2);
        break;
    }
    case 14: {
        const qint64 n = rng.bounded(1, 41);
        call("stress.pipeline", {n, int(rng.bounded(0, 4)), ms});
        e->value = qlonglong(n * (n + 1) / 2);
        break;
    }
    case 15: {
        const qint64 n = rng.bounded(1, 21);
        call("stress.select2", {n, ms});
        e->value = qlonglong(2 * n);
        break;
    }
    case 16:
        call("stress.cancelTask", {ms});
        e->value = true;
        break;
    case 17:
        call("stress.unjoined", {a, ms});
        fails(K::Runtime, QStringLiteral("task boom %1").arg(a));
        break;
    case 18:
        call("stress.wrapped", {a, ms});
        e->value = qlonglong(2 * a + 1);
        break;
    case 19: {
        const qint64 n = rng.bounded(20000, 300000);
        call("stress.cpu", {n});
        e->value = qlonglong(n * (n + 1) / 2);
        break;
    }
    case 20: {
        const qint64 k = rng.bounded(2, 5);
        const qint64 n = rng.bounded(10000, 100000);
        call("stress.cpuTasks", {k, n});
        e->value = qlonglong(k * n * (n + 1) / 2);
        break;
    }
    case 21:
        eval(QStringLiteral("local t = setmetatable({}, {__index = function(_, k) return app.later('ok', k, %1) end})\n"
                            "local ok, v = pcall(function() return t[%2] end)\n"
                            "return v").arg(ms).arg(a));
        e->value = qlonglong(a);
        break;
    case 22:
        call("add", {a, b}); // no wait at all
        e->value = qlonglong(a + b);
        break;
    case 23:
        eval(QStringLiteral("local ch = isle.channel(1) ch:send(%1) ch:close()\n"
                            "local v = ch:recv() local _, ok = ch:recv() local sent = ch:try_send(1)\n"
                            "return (not ok and not sent) and v or -1").arg(a));
        e->value = qlonglong(a);
        break;
    default: { // two requests sharing a channel, made by an exec request before them
        const qlonglong id = nextPair++;
        const qint64 n = rng.bounded(1, 31);
        const int cap = int(rng.bounded(0, 4));
        e->what = QStringLiteral("exec stress.newPipe(%1, %2)").arg(id).arg(cap);
        f->future = isle->spawnExec([id, cap](lua_State *L) {
            lua_getglobal(L, "stress");
            lua_getfield(L, -1, "newPipe");
            lua_pushinteger(L, id);
            lua_pushinteger(L, cap);
            lua_call(L, 2, 0);
            lua_pop(L, 1);
            return QVariant(true);
        });
        e->value = true;
        f->fixed = true;
        out.emplace_back();
        f = &out.back();
        e = &f->expected;
        call("stress.pipeSend", {id, n});
        e->value = qlonglong(n);
        f->pair = id;
        out.emplace_back();
        f = &out.back();
        e = &f->expected;
        call("stress.pipeRecv", {id, n});
        e->value = qlonglong(n);
        e->upTo = n;
        f->pair = id;
        break;
    }
    }
    return out;
}

// The test's long-lived isles.
struct Isles
{
    std::vector<std::unique_ptr<QIsle>> isles;
    std::vector<bool> unlimited; // maxConcurrentRequests 0: pairs may go there
};

// One caller thread: `count` steps, each submitting a random request to a
// random isle, at most Window in flight. About 12% are canceled (at once or
// a few steps later) or suspended. A suspended request is resumed (or
// canceled) before this thread waits for anything: with a limit other than 1
// a suspended request that runs pauses the Lua thread, and an older request
// of ours would wait for it.
void callerLoop(Isles &isles, int caller, quint32 seed, int count, Failures &failures, Watchdog &dog)
{
    QRandomGenerator rng(seed);
    std::deque<InFlight> inFlight;
    qlonglong nextPair = qlonglong(caller + 1) * 100000000; // pipes is emptied between rounds
    std::set<qlonglong> closed; // pairs a pipeClose was sent for
    std::vector<InFlight> closers;

    // A pair member was stopped: its partner may see the channel closed
    // early, and a request that never ran closes nothing: close it for it.
    const auto partnerStopped = [&](const InFlight &f, QIsle *isle) {
        if (!f.pair || !closed.insert(f.pair).second)
            return;
        for (InFlight &other : inFlight) {
            if (other.pair == f.pair)
                other.lenient = true;
        }
        InFlight closer;
        closer.expected.what = QStringLiteral("stress.pipeClose(%1)").arg(f.pair);
        closer.future = isle->spawnCall(QStringLiteral("stress.pipeClose"), {f.pair});
        closer.expected.value = true;
        closers.push_back(std::move(closer));
    };
    QIsle *const pairIsle = [&]() -> QIsle * {
        for (std::size_t i = 0; i < isles.isles.size(); ++i) {
            if (isles.unlimited[i])
                return isles.isles[i].get();
        }
        return nullptr;
    }();
    const auto cancel = [&](InFlight &f) {
        f.canceled = true;
        f.future.cancel();
        f.action = Action::None;
        if (f.pair) {
            f.lenient = true;
            partnerStopped(f, pairIsle);
        }
    };
    const auto releaseSuspended = [&] {
        bool paused = false;
        for (InFlight &f : inFlight) {
            if (!f.suspended)
                continue;
            if (!paused) {
                paused = true; // let the suspension last a moment
                std::this_thread::sleep_for(std::chrono::microseconds(rng.bounded(0, 1500)));
            }
            f.suspended = false;
            if (f.action == Action::SuspendCancel) {
                cancel(f);
            } else {
                f.future.resume();
                f.action = Action::None;
            }
        }
    };
    const auto flushClosers = [&] {
        for (InFlight &c : closers)
            inFlight.push_back(std::move(c));
        closers.clear();
    };
    const auto finishOldest = [&] {
        releaseSuspended();
        flushClosers();
        InFlight f = std::move(inFlight.front());
        inFlight.pop_front();
        check(f, failures);
        ++dog.progress;
    };

    for (int step = 0; step < count; ++step) {
        for (InFlight &f : inFlight) {
            if (f.action == Action::None || f.suspended || step < f.actAt)
                continue;
            if (f.action == Action::Cancel) {
                cancel(f);
            } else {
                f.future.suspend();
                f.suspended = true;
                f.wasSuspended = true;
            }
        }
        flushClosers();
        const std::size_t which = rng.bounded(quint32(isles.isles.size()));
        QIsle *isle = isles.isles[which].get();
        std::vector<InFlight> made = submitRandom(isle, rng, isles.unlimited[which], nextPair);
        for (InFlight &f : made)
            f.expected.what = QStringLiteral("isle %1: %2").arg(which).arg(f.expected.what);
        const std::size_t first = inFlight.size();
        for (InFlight &f : made)
            inFlight.push_back(std::move(f)); // both of a pair, before either may be canceled
        for (std::size_t i = first; i < inFlight.size(); ++i) {
            InFlight &g = inFlight[i];
            const int roll = int(rng.bounded(100));
            g.actAt = step + int(rng.bounded(0, 6));
            if (g.fixed)
                continue;
            if (roll < 4)
                cancel(g); // right away: most likely still queued
            else if (roll < 8)
                g.action = Action::Cancel;
            else if (roll < 11)
                g.action = Action::SuspendResume;
            else if (roll < 12)
                g.action = Action::SuspendCancel;
        }
        flushClosers();
        while (inFlight.size() > std::size_t(Window))
            finishOldest();
    }
    while (!inFlight.empty())
        finishOldest();
}

// Isles born and destroyed (or shut down, with a shortened shutdownTimeout)
// while the callers run, with waiting requests in flight: every future must
// be finished when the destructor or shutdown() returns.
void churnLoop(Producer *producer, int isles, quint32 seed, Failures &failures, Watchdog &dog)
{
    QRandomGenerator rng(seed);
    qlonglong nextPair = 1;
    for (int i = 0; i < isles; ++i) {
        const int limit = int(rng.bounded(0, 3));
        std::unique_ptr<QIsle> isle;
        try {
            // A short shutdownTimeout: shutdown() cancels what still waits
            // after it (not too short: it also bounds the destructor's join).
            isle = spawnStressed(producer, limit, int(rng.bounded(0, 2)), std::chrono::milliseconds(300));
        } catch (const QIsleError &e) {
            failures.add(QStringLiteral("churn: spawn failed: %1").arg(QString::fromUtf8(e.what())));
            continue;
        }
        const bool destroy = rng.bounded(3) != 0;
        std::vector<InFlight> futures;
        const int n = int(rng.bounded(1, 25));
        for (int k = 0; k < n; ++k) {
            for (InFlight &f : submitRandom(isle.get(), rng, limit == 0, nextPair)) {
                f.canceled = true; // the isle's end may cancel it
                f.isleGone = true;
                f.lenient = f.pair != 0;
                if (rng.bounded(10) == 0 && !f.fixed)
                    f.future.cancel();
                futures.push_back(std::move(f));
            }
        }
        if (rng.bounded(2))
            QThread::usleep(rng.bounded(0, 5000));
        if (!destroy)
            isle->shutdown();
        isle.reset();
        for (InFlight &f : futures) {
            if (!f.future.isFinished()) {
                failures.add(QStringLiteral("churn: %1 not finished after the isle was %2")
                                     .arg(f.expected.what, destroy ? QStringLiteral("destroyed")
                                                                   : QStringLiteral("shut down")));
                continue;
            }
            check(f, failures);
            ++dog.progress;
        }
    }
}

qint64 vmBytesAfterFullCollect(QIsle *isle)
{
    return isle->exec([](lua_State *L) {
                   lua_gc(L, LUA_GCCOLLECT);
                   lua_gc(L, LUA_GCCOLLECT); // a second cycle for finalized objects
                   return QVariant(qlonglong(lua_gc(L, LUA_GCCOUNT)) * 1024 + lua_gc(L, LUA_GCCOUNTB));
               })
            .toLongLong();
}

} // namespace

class tst_AsyncStress : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void waitingTrafficWithChurn();
    void suspendedBeforeItsTaskStarts();
};

// Found by the run above: a request suspended while a task it spawned had
// not started yet. The task, ready, was held for the suspension but nothing
// watched the request's future for it, so resume() never let it run (and a
// cancel or the isle's end never reached it). The script suspends its own
// request, then spawns and joins: the task is ready while the request is
// suspended (unless a stop check pauses the script first; both must end).
void tst_AsyncStress::suspendedBeforeItsTaskStarts()
{
    auto own = std::make_shared<QFuture<QVariant>>();
    auto ownMutex = std::make_shared<QMutex>();
    std::unique_ptr<QIsle> isle = QIsle::spawn();
    isle->registerFunction(QStringLiteral("suspendMe"), [own, ownMutex](const QVariantList &) {
        QMutexLocker lock(ownMutex.get());
        own->suspend();
        return QVariant();
    });
    for (int i = 0; i < 10; ++i) {
        const bool cancel = i % 3 == 2;
        // Queued behind a sleeper: its future is known before it runs.
        QFuture<QVariant> blocker = isle->spawnEval(QStringLiteral("isle.sleep(5)"));
        QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
                "suspendMe() local t = isle.spawn(function() return 42 end) return t:join()"));
        {
            QMutexLocker lock(ownMutex.get());
            *own = f;
        }
        QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 10000);
        QTest::qWait(5); // held, not running
        QVERIFY(!f.isFinished());
        if (cancel)
            f.cancel();
        else
            f.resume();
        QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 10000);
        if (cancel) {
            QVERIFY(f.isCanceled());
        } else {
            QCOMPARE(QIsle::waitFor(f), QVariant(qlonglong(42)));
        }
        QVERIFY(blocker.isFinished());
    }
    // Resumed, the fibers held meanwhile go on in the order they were held:
    // the task, ready first, starts before its spawner's sleep returns (a
    // task starts no later than the spawner's next wait), so the spawner's
    // cancel finds it started and its <close> runs.
    for (int i = 0; i < 5; ++i) {
        QFuture<QVariant> blocker = isle->spawnEval(QStringLiteral("isle.sleep(5)"));
        QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
                "suspendMe()\n"
                "local closed = false\n"
                "local t = isle.spawn(function()\n"
                "  local guard <close> = setmetatable({}, {__close = function() closed = true end})\n"
                "  isle.sleep(1e9)\n"
                "end)\n"
                "isle.select({isle.channel()}, 1) -- ends by itself (isle.sleep would pause at its check)\n"
                "t:cancel()\n"
                "pcall(t.join, t)\n"
                "return closed"));
        {
            QMutexLocker lock(ownMutex.get());
            *own = f;
        }
        QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 10000);
        QTest::qWait(20); // the select timed out: its fiber is held too
        f.resume();
        QTRY_VERIFY_WITH_TIMEOUT(f.isFinished(), 10000);
        QCOMPARE(QIsle::waitFor(f), QVariant(true));
        QVERIFY(blocker.isFinished());
    }

    // A suspended request's held task is reached by the isle's end too.
    QFuture<QVariant> blocker = isle->spawnEval(QStringLiteral("isle.sleep(5)"));
    QFuture<QVariant> f = isle->spawnEval(QStringLiteral(
            "suspendMe() local t = isle.spawn(function() return 42 end) return t:join()"));
    {
        QMutexLocker lock(ownMutex.get());
        *own = f;
    }
    QTRY_VERIFY_WITH_TIMEOUT(f.isSuspended(), 10000);
    QElapsedTimer timer;
    timer.start();
    isle.reset();
    QVERIFY2(timer.elapsed() < 1000, qPrintable(QString::number(timer.elapsed())));
    QVERIFY(f.isFinished());
    QVERIFY(f.isCanceled());
}

void tst_AsyncStress::waitingTrafficWithChurn()
{
    Watchdog dog("tst_AsyncStress::waitingTrafficWithChurn", std::chrono::seconds(300));
    const quint32 seed = StressKit::seed(QRandomGenerator::system()->generate());
    dog.setSeed(seed);
    qInfo("seed %u (QISLE_STRESS_SEED=%u repeats this run's requests)", seed, seed);
    Failures failures;
    const int rounds = 3;
    const int perCaller = scaled(300);
    const int churnIsles = scaled(10);

    Producer producer; // outlives every isle: their host functions use it
    struct Spec
    {
        int limit;
        int sliceMs;
    };
    const Spec specs[] = {{0, 2}, {1, 0}, {3, 1}};
    Isles isles;
    for (const Spec &spec : specs) {
        isles.isles.push_back(spawnStressed(&producer, spec.limit, spec.sliceMs));
        isles.unlimited.push_back(spec.limit == 0);
    }

    QList<qint64> vmBytes;
    QElapsedTimer timer;
    timer.start();
    for (int round = 0; round < rounds; ++round) {
        dog.setPhase(round == 0 ? "round 0" : round == 1 ? "round 1" : "round 2+");
        QList<QThread *> threads;
        for (int c = 0; c < CallerThreads; ++c) {
            const quint32 callerSeed = seed + quint32(1000 * round + c);
            threads << QThread::create([&, c, callerSeed] { callerLoop(isles, c, callerSeed, perCaller, failures, dog); });
        }
        threads << QThread::create([&, round] {
            churnLoop(&producer, churnIsles, seed + quint32(9000 + round), failures, dog);
        });
        for (QThread *t : threads)
            t->start();
        for (QThread *t : threads) {
            t->wait(); // bounded by the watchdog
            delete t;
        }
        QVERIFY2(failures.count() == 0, qPrintable(failures.summary() + QStringLiteral("\n  seed %1").arg(seed)));

        dog.setPhase("checking the isles still serve");
        qint64 heap = 0;
        for (const auto &isle : isles.isles) {
            QVERIFY(isle->isAlive());
            QCOMPARE(isle->eval(QStringLiteral("return 6 * 7")), QVariant(qlonglong(42)));
            QCOMPARE(isle->eval(QStringLiteral("return app.later('ok', 7, 1) * 6")), QVariant(qlonglong(42)));
            QCOMPARE(isle->call(QStringLiteral("stress.fanout"), {3, 7, 1}), QVariant(qlonglong(42)));
            QCOMPARE(isle->call(QStringLiteral("stress.pipeline"), {8, 0, 0}), QVariant(qlonglong(36)));
            isle->eval(QStringLiteral("pipes = {}"));
            heap += vmBytesAfterFullCollect(isle.get());
        }
        vmBytes << heap;
        qDebug("round %d: %d requests checked so far, %lld ms, Lua heaps %lld bytes", round, dog.progress.load(),
               timer.elapsed(), heap);
    }

    // Round 0 warms up (pooled fibers, task threads, channels' metatables);
    // later rounds stay level. A request that leaks a fiber, a task, a
    // channel or a waiter would grow this by its count.
    const qint64 tolerance = vmBytes.at(1) / 4 + 256 * 1024;
    QVERIFY2(vmBytes.last() <= vmBytes.at(1) + tolerance,
             qPrintable(QStringLiteral("Lua heaps grew from %1 to %2 bytes").arg(vmBytes.at(1)).arg(vmBytes.last())));

    // Every isle shuts down with nothing left waiting.
    for (auto &isle : isles.isles) {
        isle->shutdown();
        QVERIFY(!isle->isAlive());
    }
}

QTEST_GUILESS_MAIN(tst_AsyncStress)
#include "tst_asyncstress.moc"
