// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "isle/printrelay_p.h"
#include "isle/requestqueue_p.h"

#include <QIsle/qisle.h>

#include <QtCore/QMutex>
#include <QtCore/QThread>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <optional>
#include <mutex>

class Allocator;
class IsleLink;
class Worker;

// The isle's thread: it creates the worker, so the worker and its lua_State
// are born, used and closed on this thread only. It holds no pointer to the
// QIsle, so an abandoned thread (see ~QIsle) touches nothing that is gone.
class IsleThread : public QThread
{
    Q_OBJECT
public:
    IsleThread(std::shared_ptr<RequestQueue> queue, const QIsleOptions &options, std::shared_ptr<PrintRelay> printRelay,
               std::shared_ptr<IsleLink> objects, std::shared_ptr<std::atomic<std::size_t>> memoryUsage);

    ~IsleThread() override;

    // Lua thread only, while the thread runs.
    Worker *worker() const { return m_worker; }

    // QIsle::spawn's thread, once, after start(): the VM it built meanwhile
    // (Lua's standard libraries open, allocated through `allocator`), or
    // nullptr for one made here. run() waits for it before it makes the
    // worker; the state is used by one thread at a time, handed over under
    // m_handOverMutex. Later calls do nothing.
    void handOver(lua_State *prepared, std::unique_ptr<Allocator> allocator);

protected:
    void run() override;

private:
    std::shared_ptr<RequestQueue> m_queue;
    const QIsleOptions m_options;
    const std::shared_ptr<PrintRelay> m_printRelay; // print() lines to QIsle::printed
    const std::shared_ptr<IsleLink> m_objects;      // for the object library
    const std::shared_ptr<std::atomic<std::size_t>> m_memoryUsage; // the worker's byte counter
    Worker *m_worker = nullptr;

    // The hand-over (std:: primitives: ThreadSanitizer sees their order).
    std::mutex m_handOverMutex;
    std::condition_variable m_handedOverChanged;
    bool m_handedOver = false;                       // under m_handOverMutex
    std::atomic<bool> m_handedOverSeen{false};       // the same, for run()'s short spin
    lua_State *m_prepared = nullptr;                 // under m_handOverMutex, then the Lua thread's
    std::unique_ptr<Allocator> m_preparedAllocator;  // likewise; freed once the worker adopted the state
};

class QIslePrivate
{
public:
    explicit QIslePrivate(QIsle *q, const QIsleOptions &options);
    ~QIslePrivate();

    // Builds a request (the only place requests are made).
    static std::unique_ptr<Request> evalRequest(const QString &chunk, const QIsleRequestOptions &options);
    static std::unique_ptr<Request> callRequest(const QString &function, const QVariantList &args,
                                                const QIsleRequestOptions &options);
    static std::unique_ptr<Request> execRequest(QIsle::ExecFunction fn, const QIsleRequestOptions &options);

    // Queues a request, or answers it at once (Shutdown, Busy; inline on the
    // Lua thread for blocking calls).
    QFuture<QVariant> submit(std::unique_ptr<Request> request);
    QVariant block(std::unique_ptr<Request> request);
    // Not on the Lua thread: submits the request and waits for its end,
    // spinning up to `spin` first (yielding the CPU meanwhile if
    // `yielding`), then asleep, running calls posted to this thread. With
    // `result`, a completed request's value comes there, not into the
    // future; any other end is the future's.
    QFuture<QVariant> submitAndWait(std::unique_ptr<Request> request, std::chrono::microseconds spin,
                                    bool yielding, std::optional<QVariant> *result = nullptr);
    bool onLuaThread() const { return QThread::currentThread() == thread; }
    // Waits for the thread: at most options.shutdownTimeout once the VM is
    // being closed, or from now on when aborting; abandons it (logged) past
    // that.
    void join(bool aborting);

    QIsle *q;
    const QIsleOptions options;
    std::shared_ptr<RequestQueue> queue;
    std::shared_ptr<PrintRelay> printRelay; // made before the thread; detached by ~QIslePrivate
    // What the isle's objects share with other threads (signal handlers,
    // handlerFailed); made before the thread, any thread after.
    std::shared_ptr<IsleLink> objects;
    // The VM's byte counter, written by its allocator; made before the
    // thread, outlives the VM.
    std::shared_ptr<std::atomic<std::size_t>> memoryUsage;
    // The mode the Lua thread installs, known before it runs.
    const QIsleOptions::StopMode stopMode;
    IsleThread *thread; // owned, never reassigned; leaked on purpose when abandoned
    QMutex joinMutex;   // shutdown() and ~QIsle() may race
    bool joined = false;
    bool abandoned = false;
};
