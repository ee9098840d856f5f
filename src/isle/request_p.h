// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/qisle.h>

#include <QtCore/QPromise>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

class ThreadMailbox;

// A thread blocked in QIslePrivate::block on its request: told once that
// the request is over -- by Worker::retire once its promise is finished,
// by RequestQueue::abandon for a VM left behind, or else when the request
// is destroyed (its promise finished or canceled by then). Cheaper than a continuation on the future (Qt's .then
// makes a promise, a function object and a future of its own per call).
//
// Set by the blocked thread before the request is submitted; then touched
// by whoever destroys the request or abandons it (`told` decides who tells).
struct BlockedCaller
{
    std::atomic<bool> *done = nullptr;      // the blocked thread's flag; never touched once set
    std::shared_ptr<ThreadMailbox> mailbox; // woken after `done` is set
    std::atomic<bool> told{false};
    // Optional, the blocked thread's too: where a completed request's value
    // goes, straight, instead of into the future's result store (which
    // nobody else reads: a blocking call's future is private). Written
    // only by tellResult(), before `done`.
    std::optional<QVariant> *result = nullptr;

    void tell(); // requestqueue.cpp
    // Lua thread: moves `value` over and tells the blocked thread at once,
    // before the promise is finished. Moved, not copied: this thread keeps
    // no reference to the value's shared data. False, touching nothing,
    // when there is no slot or the caller was told already (its VM
    // abandoned): then the value goes to the future as always.
    bool tellResult(QVariant &value); // requestqueue.cpp
    ~BlockedCaller()
    {
        if (done)
            tell();
    }
};

// One unit of work for the Lua thread. Built by the caller's thread, then
// owned by the queue, then by the worker (Lua thread only from then on).
struct Request
{
    enum class Type { Eval, Call, Exec, Shutdown };

    // First: destroyed last, once the promise below is finished.
    BlockedCaller caller;
    Type type = Type::Eval;
    QString text;              // chunk (Eval) or function path (Call)
    QByteArray utf8;           // Eval: the chunk in UTF-8, made by the caller's thread
    QVariantList args;         // Call
    QIsle::ExecFunction fn;    // Exec
    std::chrono::milliseconds timeout{0}; // > 0 own, 0 the isle's, < 0 none; counted from the start
    QByteArray chunkName;      // Eval: Lua's load() chunk name, UTF-8 ("=eval" when empty)
    quint64 parent = 0;        // the serial of the fiber it was submitted for (a child), or 0
    // The promise and a handle on the same state: ~QIsle can still finish
    // the future of a request whose VM it abandons (QPromise cannot be
    // shared across threads; the interface's members lock).
    QFutureInterface<QVariant> state{QFutureInterfaceBase::State::Pending};
    QPromise<QVariant> promise{state};
    Request *nextRetired = nullptr; // RequestQueue's list of finished requests

    Request(Type t, const QIsleRequestOptions &options) : type(t)
    {
        // QIsleRequestOptions::timeout (-1 the isle's, 0 none) as timeout above.
        const qint64 ms = options.timeout.count();
        timeout = std::chrono::milliseconds(ms < 0 ? 0 : ms == 0 ? -1 : ms);
        if (!options.chunkName.isEmpty())
            chunkName = options.chunkName.toUtf8();
        promise.start();
    }
};
