// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/qisle.h>

#include <QtCore/QFutureInterface>
#include <QtCore/QFutureWatcher>
#include <QtCore/QMutex>
#include <QtCore/QObject>
#include <QtCore/QThread>

#include <functional>
#include <memory>

class QIslePoolPrivate;
class RequestRelay;

// A request the pool holds because no isle could take it when it was made:
// every isle was leased (it waits in the pool, FIFO), or the isle it was
// bound to was still being spawned. The caller has the future of `promise`.
struct HeldRequest
{
    using Submit = std::function<QFuture<QVariant>(QIsle &)>;
    enum class State {
        Waiting,   // in QIslePoolPrivate::waiting
        Pending,   // in Slot::pending of `slot`, whose isle is being spawned
        Forwarded, // submitted to an isle; the relay copies its outcome
        Done,      // promise finished, or about to be by whoever set Done
    };

    HeldRequest() { promise.reportStarted(); }

    Submit submit;                          // pool mutex; cleared once forwarded
    State state = State::Waiting;           // pool mutex
    int slot = -1;                          // pool mutex (Pending)
    RequestRelay *relay = nullptr;          // set once, under the pool mutex, before anyone else sees it
    QFutureInterface<QVariant> promise;     // any thread (its members lock); finished by whoever set Done,
                                            // or by the relay once Forwarded
};

// Copies a finished isle future into a held request's promise -- results
// (emits and result 0), progress, the error or the cancel -- and finishes it.
// Any thread.
void finishFrom(QFutureInterface<QVariant> &promise, const QFuture<QVariant> &isleFuture);

// One held request, seen from the relay thread: watches the caller's future
// (cancel, suspend, resume) and, once forwarded, the isle's (results,
// progress, finish). Lives in the relay thread; deletes itself once the
// caller's future finished.
class RequestRelay : public QObject
{
public:
    RequestRelay(QIslePoolPrivate *pool, std::shared_ptr<HeldRequest> held);
    // A relay deleted before its request finished (the relay thread
    // stopped): finishes it, from the isle's outcome when there is one.
    ~RequestRelay() override;

    // Relay thread (posted): start watching the caller's future.
    void start();
    // Relay thread (posted, after start): the isle's future to relay.
    void attach(const QFuture<QVariant> &isleFuture);

private:
    void callerCanceled();
    void callerSuspending();
    void callerResumed();
    void isleResults(int begin, int end);
    void isleProgress();
    void isleFinished();

    QIslePoolPrivate *const m_pool; // outlives the relay thread
    const std::shared_ptr<HeldRequest> m_held;
    QFutureWatcher<QVariant> m_caller; // relay thread only
    QFutureWatcher<QVariant> m_isle;   // relay thread only
    bool m_attached = false;           // relay thread only
};

// The pool's one helper thread, with an event loop: it relays held requests
// (no thread per request, and nothing depends on an event loop in the
// caller's thread), and it is the thread the pool's isles live in, so that
// their printed signals are delivered and they are destroyed in one thread.
//
// Every member: any thread.
class PoolRelay
{
public:
    PoolRelay();
    ~PoolRelay(); // stop()

    // Moves a freshly spawned isle to the relay thread. Call it from the
    // thread that spawned the isle.
    void adopt(QIsle *isle);
    // Deletes an isle in the relay thread (waits for it; ~QIsle returns
    // promptly), or here once the relay stopped. Never call it with the pool
    // mutex held.
    void destroy(QIsle *isle);
    // Makes the relay object of a new held request (call it with the pool
    // mutex held, before the request is visible to others).
    RequestRelay *watch(QIslePoolPrivate *pool, const std::shared_ptr<HeldRequest> &held);
    // Posts the isle's future to the relay of a forwarded request.
    void forwarded(RequestRelay *relay, const QFuture<QVariant> &isleFuture);
    // Runs what is already posted, then ends the thread. Idempotent.
    void stop();
    bool isRelayThread() const { return QThread::currentThread() == m_thread; }

private:
    QMutex m_mutex;        // orders destroy() against stop()
    bool m_running = true; // m_mutex
    QThread *m_thread;     // owned
    QObject *m_context;    // lives in m_thread; parent of every RequestRelay; deleted after the thread ends
};
