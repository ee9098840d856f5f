// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

// What a Qt developer would write instead of QIsle, for rows 4 and 6: the
// same add(a, b) request answered through a QFuture<QVariant>.

#include <QtCore/QFuture>
#include <QtCore/QThread>
#include <QtCore/QVariant>

#include <memory>

// A worker QObject on a QThread; every request is a queued invoke whose
// lambda fulfils a QPromise. No Lua: what Qt's own hand-off costs.
class QueuedWorker
{
public:
    explicit QueuedWorker(int cpu);
    ~QueuedWorker();
    QFuture<QVariant> add(qlonglong a, qlonglong b);

private:
    QThread m_thread;
    std::unique_ptr<QObject> m_context;
};

// A fresh lua_State per request, opened with the standard libraries, run by
// QtConcurrent::run on Qt's global thread pool. The pool thread pins itself
// to cpu first (-1: any CPU).
QFuture<QVariant> freshStateAdd(qlonglong a, qlonglong b, int cpu);

// QJSEngine living on a worker QThread, called through queued invokes.
// available() is false when the benchmark was built without Qt6::Qml.
class JsWorker
{
public:
    explicit JsWorker(int cpu);
    ~JsWorker();
    static bool available();
    QFuture<QVariant> add(qlonglong a, qlonglong b);

private:
    struct State;
    QThread m_thread;
    std::unique_ptr<QObject> m_context;
    std::unique_ptr<State> m_state; // touched on m_thread only
};
