// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "alternatives.h"

#include "harness.h"

#include <QtCore/QPromise>

#if QISLE_BENCH_HAVE_CONCURRENT
#include <QtConcurrent/QtConcurrentRun>
#endif
#if QISLE_BENCH_HAVE_QML
#include <QtQml/QJSEngine>
#endif

#include <QIsle/QIsleLua>

namespace {

// Runs fn on context's thread; the future is started here, as QIsle's are.
template<typename Fn>
QFuture<QVariant> queued(QObject *context, Fn fn)
{
    auto promise = std::make_shared<QPromise<QVariant>>();
    QFuture<QVariant> future = promise->future();
    promise->start();
    QMetaObject::invokeMethod(
            context,
            [promise, fn = std::move(fn)] {
                promise->addResult(fn());
                promise->finish();
            },
            Qt::QueuedConnection);
    return future;
}

std::unique_ptr<QObject> startPinned(QThread &thread, int cpu)
{
    thread.start();
    auto context = std::make_unique<QObject>();
    context->moveToThread(&thread);
    QMetaObject::invokeMethod(
            context.get(), [cpu] { Bench::pinCurrentThread(cpu); }, Qt::BlockingQueuedConnection);
    return context;
}

} // namespace

QueuedWorker::QueuedWorker(int cpu) : m_context(startPinned(m_thread, cpu)) { }

QueuedWorker::~QueuedWorker()
{
    m_thread.quit();
    m_thread.wait();
}

QFuture<QVariant> QueuedWorker::add(qlonglong a, qlonglong b)
{
    return queued(m_context.get(), [a, b] { return QVariant(a + b); });
}

QFuture<QVariant> freshStateAdd(qlonglong a, qlonglong b, int cpu)
{
#if QISLE_BENCH_HAVE_CONCURRENT
    return QtConcurrent::run([a, b, cpu] {
        Bench::pinCurrentThread(cpu);
        lua_State *L = luaL_newstate();
        luaL_openlibs(L);
        QVariant result;
        if (luaL_dostring(L, "function add(a, b) return a + b end") == LUA_OK) {
            lua_getglobal(L, "add");
            lua_pushinteger(L, a);
            lua_pushinteger(L, b);
            if (lua_pcall(L, 2, 1, 0) == LUA_OK)
                result = qlonglong(lua_tointeger(L, -1));
        }
        lua_close(L);
        return result;
    });
#else
    Q_UNUSED(a);
    Q_UNUSED(b);
    Q_UNUSED(cpu);
    return {};
#endif
}

#if QISLE_BENCH_HAVE_QML
struct JsWorker::State
{
    QJSEngine engine;
    QJSValue add;
};
#else
struct JsWorker::State
{
};
#endif

bool JsWorker::available()
{
    return QISLE_BENCH_HAVE_QML;
}

JsWorker::JsWorker(int cpu) : m_context(startPinned(m_thread, cpu))
{
#if QISLE_BENCH_HAVE_QML
    // The engine is created on, and only used from, the worker thread.
    QMetaObject::invokeMethod(
            m_context.get(),
            [this] {
                m_state = std::make_unique<State>();
                m_state->add = m_state->engine.evaluate(QStringLiteral("(function (a, b) { return a + b; })"));
            },
            Qt::BlockingQueuedConnection);
#endif
}

JsWorker::~JsWorker()
{
    QMetaObject::invokeMethod(
            m_context.get(), [this] { m_state.reset(); }, Qt::BlockingQueuedConnection);
    m_thread.quit();
    m_thread.wait();
}

QFuture<QVariant> JsWorker::add(qlonglong a, qlonglong b)
{
#if QISLE_BENCH_HAVE_QML
    State *state = m_state.get();
    return queued(m_context.get(), [state, a, b] {
        return state->add.call({QJSValue(double(a)), QJSValue(double(b))}).toVariant();
    });
#else
    Q_UNUSED(a);
    Q_UNUSED(b);
    return {};
#endif
}
