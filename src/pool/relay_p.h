// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/qisle.h>

#include <QtCore/QFutureInterface>
#include <QtCore/QMutex>
#include <QtCore/QThread>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

class QIslePoolPrivate;
class QTimer;

// A request the pool holds because no isle could take it when it was made:
// every isle was leased (it waits in the pool, FIFO), or the isle it was
// bound to was still being spawned. The caller has the future of `promise`.
struct HeldRequest
{
    using Submit = std::function<QFuture<QVariant>(QIsle &)>;
    enum class State {
        Waiting,   // in QIslePoolPrivate::waiting
        Pending,   // in PoolSlot::pending of `slot`, whose isle is being spawned
        Forwarded, // submitted to an isle; the relay copies its outcome
        Done,      // promise finished, or about to be by whoever set Done
    };

    HeldRequest() { promise.reportStarted(); }

    Submit submit;                      // pool mutex; cleared once forwarded
    State state = State::Waiting;       // pool mutex
    int slot = -1;                      // pool mutex (Pending)
    QFutureInterface<QVariant> promise; // any thread (its members lock); finished by whoever set Done,
                                        // or by the relay once Forwarded

    // Relay thread only:
    QFuture<QVariant> isleFuture; // once forwarded
    bool attached = false;        // isleFuture is set
    bool cancelSent = false;      // the caller's cancel reached the isle's future
    bool suspendSent = false;     // the isle's future is asked to suspend
    int relayed = 0;              // emits copied into promise so far (1..relayed)
};

// Copies a finished isle future into a held request's promise -- the emits
// after the first `relayed` ones, result 0, progress, the error or the
// cancel -- and finishes it. Any thread.
void finishFrom(QFutureInterface<QVariant> &promise, const QFuture<QVariant> &isleFuture, int relayed = 0);

// The pool's one helper thread, with an event loop.
//
// It relays held requests: while any exists it looks at them every
// millisecond or so (less often when there are thousands) -- the caller's
// cancel, suspend and resume go to the isle's future (or, before an isle
// took the request, the cancel finishes it at once), the isle's progress
// and emits come back as they change, its outcome when it finished. No
// thread per request, and nothing depends on an event loop in the caller's
// thread. (A QFutureWatcher would
// see changes without looking, but its callout events cross threads inside
// Qt, where ThreadSanitizer cannot follow them.)
//
// It is also the thread the pool's isles live in, so that their printed
// signals are delivered, and they are destroyed, in one thread.
//
// Every member: any thread.
class PoolRelay
{
public:
    explicit PoolRelay(QIslePoolPrivate *pool);
    ~PoolRelay(); // stop()

    // Moves a freshly spawned isle to the relay thread (waits for it). Call
    // it from the thread that spawned the isle, without the pool mutex.
    void adopt(QIsle *isle);
    // Deletes an isle in the relay thread (waits for it; ~QIsle returns
    // promptly), or here once the relay stopped. Never call it with the pool
    // mutex held.
    void destroy(QIsle *isle);
    // Starts relaying a new held request.
    void watch(const std::shared_ptr<HeldRequest> &held);
    // The isle's future of a forwarded request.
    void forwarded(const std::shared_ptr<HeldRequest> &held, const QFuture<QVariant> &isleFuture);
    // Runs what is already posted and ends the thread; then finishes what is
    // left from the isles' outcomes. Idempotent.
    void stop();
    bool isRelayThread() const { return QThread::currentThread() == m_thread; }

private:
    // Runs fn in the relay thread, in order with the other closures.
    void post(std::function<void()> fn);
    // Relay thread (or the stopper, once the thread ended).
    void runPosted();
    void poll();
    void schedule();
    // One held request; false once it is finished and can be dropped.
    bool relay(HeldRequest &held);

    QIslePoolPrivate *const m_pool; // outlives the relay thread
    QMutex m_mutex;                 // orders destroy() against stop()
    bool m_running = true;          // m_mutex
    QThread *m_thread;              // owned
    int m_wakeRead = -1;            // Unix: the pipe that wakes the relay thread; its notifier lives there
    int m_wakeWrite = -1;
    QObject *m_context = nullptr;   // elsewhere: queued calls wake it; set before, cleared after the loop
    std::mutex m_postMutex;                     // any thread
    std::deque<std::function<void()>> m_posted; // m_postMutex
    bool m_wakePending = false;                 // m_postMutex; a byte is in the pipe
    std::vector<std::shared_ptr<HeldRequest>> m_active; // relay thread (the stopper once it ended)
    QTimer *m_timer = nullptr;                  // relay thread
    friend class RelayThread;
};
