// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// libFuzzer target: arbitrary chunks through QIsle::eval on a sandboxed isle
// with a small memory limit and timeout. Every outcome must be a result or a
// QIsleError (any other exception, a crash, a sanitizer report or a hang is a
// finding), and the isle must keep serving afterwards.
//
// Each input gets an isle of its own, so inputs do not leak state into each
// other. The isle runs tasks in time slices and has async host functions
// (app.*: a ready future, one another thread finishes a little later, a
// failed one, one its producer cancels, one that stays pending until the
// script stops, one that throws), so that chunks can wait in every way. Two things are taken away from the chunks, because README ("What
// cannot be stopped, and the bound") documents that they cannot be stopped
// and the fuzzer would only report that documented hang: a __gc metamethod
// (Lua runs finalizers with hooks off) and an enormous string.find (one C
// call, O(subject x pattern), no hook inside).
#include <QIsle/QIsle>

#include <QtCore/QCoreApplication>
#include <QtCore/QPromise>

#include <QIsle/QIsleLua>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

constexpr char Prelude[] = R"lua(
local raw = setmetatable
setmetatable = function(t, mt)
  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then error('no __gc in the fuzzer', 2) end
  return raw(t, mt)
end
local find = string.find
string.find = function(s, p, ...)
  if type(s) == 'string' and type(p) == 'string' and #s * #p > 1e8 then
    error('no enormous string.find in the fuzzer', 2)
  end
  return find(s, p, ...)
end
)lua";

[[noreturn]] void die(const char *what, const QString &detail = {})
{
    std::fprintf(stderr, "fuzz_eval: %s %s\n", what, qPrintable(detail));
    std::fflush(stderr);
    std::abort();
}

// Touches every part of a result, so that a sanitizer sees bad memory.
qsizetype walk(const QVariant &v, int depth = 0)
{
    if (depth > 200)
        die("a result nested deeper than the value bridge allows");
    switch (v.typeId()) {
    case QMetaType::QVariantList: {
        qsizetype n = 1;
        for (const QVariant &item : v.toList())
            n += walk(item, depth + 1);
        return n;
    }
    case QMetaType::QVariantMap: {
        qsizetype n = 1;
        const QVariantMap map = v.toMap();
        for (auto it = map.cbegin(); it != map.cend(); ++it)
            n += it.key().size() + walk(it.value(), depth + 1);
        return n;
    }
    case QMetaType::QString:
        return v.toString().size();
    case QMetaType::QByteArray:
        return v.toByteArray().size();
    default:
        return 1;
    }
}

// app.later's futures: finished by a thread of their own after a while
// (at most 20 ms); whatever is left finishes when the process exits.
class Later
{
public:
    Later()
        : m_thread([this] {
              std::unique_lock lock(m_mutex);
              while (!m_stop) {
                  if (m_due.empty()) {
                      m_wake.wait(lock);
                  } else if (const auto at = m_due.begin()->first; std::chrono::steady_clock::now() < at) {
                      m_wake.wait_until(lock, at);
                  } else {
                      Item item = std::move(m_due.begin()->second);
                      m_due.erase(m_due.begin());
                      lock.unlock();
                      item.promise->addResult(item.value);
                      item.promise->finish();
                      lock.lock();
                  }
              }
          })
    {
    }
    ~Later()
    {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_wake.notify_all();
        m_thread.join();
        for (auto &[at, item] : m_due)
            item.promise->finish();
    }
    QFuture<QVariant> add(double ms, const QVariant &value)
    {
        Item item{std::make_shared<QPromise<QVariant>>(), value};
        item.promise->start();
        QFuture<QVariant> future = item.promise->future();
        const auto delay = std::chrono::microseconds(qint64(qBound(0.0, ms, 20.0) * 1000)); // NaN: 0
        {
            std::lock_guard lock(m_mutex);
            m_due.emplace(std::chrono::steady_clock::now() + delay, std::move(item));
        }
        m_wake.notify_one();
        return future;
    }

private:
    struct Item
    {
        std::shared_ptr<QPromise<QVariant>> promise;
        QVariant value;
    };
    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::multimap<std::chrono::steady_clock::time_point, Item> m_due; // m_mutex
    bool m_stop = false;                                              // m_mutex
    std::thread m_thread;
};

Later *later()
{
    static Later instance;
    return &instance;
}

QFuture<QVariant> finished(const QVariant &value, std::exception_ptr error = {}, bool cancel = false)
{
    QPromise<QVariant> promise;
    promise.start();
    if (error)
        promise.setException(error);
    else if (cancel)
        promise.future().cancel();
    else
        promise.addResult(value);
    promise.finish();
    return promise.future();
}

void registerAsyncFunctions(QIsle &isle)
{
    isle.registerAsyncFunction(QStringLiteral("app.ready"), [](const QVariantList &args) {
        return finished(args.value(0));
    });
    isle.registerAsyncFunction(QStringLiteral("app.later"), [](const QVariantList &args) {
        return later()->add(args.value(0).toDouble(), args.value(1));
    });
    isle.registerAsyncFunction(QStringLiteral("app.fail"), [](const QVariantList &args) {
        return finished({}, std::make_exception_ptr(std::runtime_error(args.value(0).toString().toStdString())));
    });
    isle.registerAsyncFunction(QStringLiteral("app.cancel"), [](const QVariantList &) {
        return finished({}, {}, true);
    });
    // Pending until the script stops (its stop cancels it) or the isle goes
    // (the promises die with the function, and finish canceled).
    auto pending = std::make_shared<std::vector<std::shared_ptr<QPromise<QVariant>>>>();
    isle.registerAsyncFunction(QStringLiteral("app.pending"), [pending](const QVariantList &) {
        if (pending->size() > 1000)
            pending->clear();
        auto promise = std::make_shared<QPromise<QVariant>>();
        promise->start();
        pending->push_back(promise); // Lua thread only
        return promise->future();
    });
    isle.registerAsyncFunction(QStringLiteral("app.throws"), [](const QVariantList &) -> QFuture<QVariant> {
        throw std::runtime_error("app.throws threw");
    });
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static QCoreApplication app(*argc, *argv);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    QIsleOptions options;
    options.libraries = QIsleOptions::SandboxLibraries;
    options.memoryLimit = 32 * 1024 * 1024;
    options.timeout = std::chrono::milliseconds(50);
    options.timeSlice = std::chrono::milliseconds(1);
    std::unique_ptr<QIsle> isle = QIsle::spawn([](lua_State *L) {
        if (luaL_dostring(L, Prelude) != LUA_OK)
            lua_error(L);
    }, options);
    registerAsyncFunctions(*isle);

    const QString chunk = QString::fromUtf8(reinterpret_cast<const char *>(data), qsizetype(size));
    try {
        walk(isle->eval(chunk));
    } catch (const QIsleError &e) {
        if (e.message().isNull() && e.kind() != QIsleError::Kind::Timeout && e.kind() != QIsleError::Kind::Cancelled)
            die("an error without a message of kind", QIsleError::kindName(e.kind()));
    } catch (const std::exception &e) {
        die("not a QIsleError:", QString::fromLocal8Bit(e.what()));
    } catch (...) {
        die("an unknown exception");
    }
    // Whatever the chunk did, the isle serves the next request.
    try {
        if (isle->eval(QStringLiteral("return 1 + 1")) != QVariant(qlonglong(2)))
            die("the isle answered 1 + 1 wrongly");
    } catch (const QIsleError &e) {
        // A chunk may have replaced a global the check would use; a fresh
        // chunk that needs no global must still work.
        if (e.kind() != QIsleError::Kind::Memory)
            die("the isle stopped serving:", QString::fromUtf8(e.what()));
    }
    return 0;
}
