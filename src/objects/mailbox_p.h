// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "isle/request_p.h"

#include <QIsle/qisleerror.h>

#include <QtCore/QDeadlineTimer>
#include <QtCore/QFuture>
#include <QtCore/QMutex>
#include <QtCore/QPointer>
#include <QtCore/QPromise>
#include <QtCore/QThread>
#include <QtCore/QVariant>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

class ThreadMailbox;

// Requests that code running in another thread on behalf of a waiting script
// (a context function that calls isle->eval, say) submits to that script's
// own isle: they run on the Lua thread while the script waits, ahead of the
// queue (DESIGN, child requests), instead of waiting behind their parent.
//
// Any thread; guarded by m_mutex.
class ChildInbox
{
public:
    ChildInbox(const void *queue, std::shared_ptr<ThreadMailbox> luaThread)
        : m_queue(queue), m_luaThread(std::move(luaThread)) { }

    // The inbox of the posted call running in this thread, if any.
    static ChildInbox *current();
    const void *queue() const { return m_queue; }

    // Takes the request unless the waiting script went (false).
    bool push(std::unique_ptr<Request> &request);
    bool hasRequests() const { return m_count.load(std::memory_order_acquire) > 0; }
    std::deque<std::unique_ptr<Request>> take();
    // No more requests come in; returns what is left.
    std::deque<std::unique_ptr<Request>> close();

private:
    friend class PostedCall;
    const void *const m_queue; // the isle's RequestQueue, as an identity
    const std::shared_ptr<ThreadMailbox> m_luaThread;
    QMutex m_mutex;
    std::deque<std::unique_ptr<Request>> m_requests;
    std::atomic<int> m_count{0};
    bool m_closed = false;
};

// A promise fulfilled in any thread. With a finisher set (an object of the
// Lua thread, whose event loop watches the future through a QFutureWatcher
// while the script waits), the future is finished in the finisher's thread:
// the watcher's call-out events are then made and delivered in one thread.
// Without one, it finishes where it is fulfilled, and wakes the waiter's
// mailbox (a blocked thread that polls the future).
//
// Any thread; the first of fulfil/fail/cancel wins.
class HandOff : public std::enable_shared_from_this<HandOff>
{
public:
    HandOff() { m_promise.start(); }
    Q_DISABLE_COPY_MOVE(HandOff)

    QFuture<QVariant> future() { return m_promise.future(); }
    bool isCanceled() { return m_promise.isCanceled(); }

    // Before the hand-off starts (the waiting thread).
    void setWaiter(std::shared_ptr<ThreadMailbox> waiter) { m_waiter = std::move(waiter); }
    // On the finisher's own thread, before the hand-off starts.
    void setFinisher(QObject *finisher)
    {
        m_finisher = finisher;
        m_finisherThread = finisher ? finisher->thread() : nullptr;
    }

    void fulfil(const QVariant &result) { end(Outcome{result, std::nullopt, false}); }
    void fail(const QIsleError &error) { end(Outcome{{}, error, false}); }
    void cancel() { end(Outcome{{}, std::nullopt, true}); }

private:
    struct Outcome
    {
        QVariant result;
        std::optional<QIsleError> error;
        bool canceled;
    };
    void end(Outcome outcome);
    void complete(const Outcome &outcome);

    std::atomic<bool> m_ended{false};
    QFutureInterface<QVariant> m_interface{QFutureInterfaceBase::State::Pending};
    QPromise<QVariant> m_promise{m_interface};
    std::shared_ptr<ThreadMailbox> m_waiter;
    QPointer<QObject> m_finisher;
    QThread *m_finisherThread = nullptr;
};

// One call a script posts to the thread an object lives in (the "target
// thread"): a property read, a method call, a context function. It runs there
// exactly once -- either from the target thread's event loop (a queued
// QMetaCallEvent to the target object), or, while that thread is blocked in
// one of QIsle's blocking calls, from its mailbox -- or it is dropped
// (canceled by the waiting script, or its target destroyed first). Its future
// always finishes.
//
// Thread-safe: `state` decides who runs or drops it.
class PostedCall : public std::enable_shared_from_this<PostedCall>
{
public:
    // Runs in the target thread, with the target alive; may throw.
    using Body = std::function<QVariant(QObject *target)>;

    PostedCall(QPointer<QObject> target, QThread *thread, Body body, QString what);
    ~PostedCall();
    Q_DISABLE_COPY_MOVE(PostedCall)

    QFuture<QVariant> future() { return m_handOff->future(); }

    // Target thread: runs the body unless someone ran or dropped it first.
    // When the target moved to another thread meanwhile, posts the call on
    // there instead.
    void run();
    // Any thread: finishes the future with this error unless the call ran or
    // is running. True when it was dropped.
    bool drop(const QIsleError &error);
    // The waiting side stops waiting: drop the call if it has not started;
    // a started one's answer is discarded (its future still finishes).
    void cancel();

    // Whose mailbox to wake once the future finished (the waiting thread's),
    // and, for a script that yields, where to finish it (HandOff).
    void setWaiter(std::shared_ptr<ThreadMailbox> waiter) { m_handOff->setWaiter(std::move(waiter)); }
    void setFinisher(QObject *finisher) { m_handOff->setFinisher(finisher); }
    // Where requests the body submits to the waiting script's isle go: to
    // the inbox the blocked Lua thread runs (the script cannot yield), or
    // to the queue as children of the waiting fiber (it yields).
    void setChildInbox(std::shared_ptr<ChildInbox> inbox) { m_children = std::move(inbox); }
    void setParent(const void *queue, quint64 serial)
    {
        m_parentQueue = queue;
        m_parentSerial = serial;
    }

    QThread *thread() const { return m_thread.load(std::memory_order_acquire); }
    const void *parentQueue() const { return m_parentQueue; }
    quint64 parentSerial() const { return m_parentSerial; }

    // Posts it to its thread: the mailbox (for a blocked thread) and the
    // target's event queue. The call keeps itself alive until one of them ran
    // or dropped it.
    static void post(const std::shared_ptr<PostedCall> &call);

private:
    enum State { Pending, Running, Done };

    std::atomic<int> m_state{Pending};
    QPointer<QObject> m_target;   // any thread may copy or test it
    std::atomic<QThread *> m_thread; // where it is posted; the target thread re-posts when the object moved
    Body m_body;                  // run (and destroyed) in the target thread
    const QString m_what;         // "the context object of 'app.f'": for the destroyed error
    const std::shared_ptr<HandOff> m_handOff = std::make_shared<HandOff>();
    std::shared_ptr<ChildInbox> m_children;
    const void *m_parentQueue = nullptr; // set before posting, read by the target thread
    quint64 m_parentSerial = 0;
};

// The calls posted to objects of one thread, for the moments that thread is
// blocked in one of QIsle's blocking calls (eval, call, exec, waitFor,
// shutdown, destruction; on a Lua thread, a call into another thread that
// cannot yield). Such a wait runs these calls, and nothing else.
//
// Any thread; guarded by m_mutex.
class ThreadMailbox
{
public:
    // The mailbox of a thread (made at first use, kept for the thread's life).
    static std::shared_ptr<ThreadMailbox> of(QThread *thread);
    static std::shared_ptr<ThreadMailbox> current() { return of(QThread::currentThread()); }

    void post(const std::weak_ptr<PostedCall> &call);
    // Wakes the threads waiting on this mailbox so they look at their
    // condition again (a future they wait for finished).
    void notify();

    // The owning thread only: waits until done() (asked under the mailbox's
    // lock, after each wake-up) or the deadline passes, running the calls
    // posted here meanwhile. True when done() held.
    bool waitUntil(const std::function<bool()> &done, QDeadlineTimer deadline = QDeadlineTimer::Forever);
    // The owning thread only: runs what is posted now, without waiting.
    void runPosted();

private:
    std::deque<std::weak_ptr<PostedCall>> takeLocked();
    static void runAll(std::deque<std::weak_ptr<PostedCall>> &calls);

    // std:: rather than QMutex/QWaitCondition: ThreadSanitizer sees the
    // unlock inside a condition wait only in the standard library.
    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::deque<std::weak_ptr<PostedCall>> m_calls;
    quint64 m_generation = 0; // bumped by notify(): a waiter never misses one
};

namespace ThreadCalls {

// How QIsle::waitFor waits for a future (the application's) on a thread that
// scripts may call into: until it finished, running the calls posted to this
// thread meanwhile. A helper thread watches the future: a QFuture keeps only
// one continuation, and QIsle must not replace the application's.
void waitForFinished(const QFuture<QVariant> &future);
// Waits (this thread) until the flag turned true, running the calls posted
// to this thread meanwhile.
void waitUntil(const std::atomic<bool> &flag);

// Runs fn in receiver's thread: a posted event that receiver does not know
// and ignores, whose destructor (Qt deletes the event after delivery, in that
// thread -- or with a receiver destroyed first) calls fn. A plain posted
// event: ThreadSanitizer follows its hand-off through Qt, unlike a queued
// functor's. The caller keeps receiver alive during the call.
void postToThreadOf(QObject *receiver, std::function<void()> fn);

// QIsle's submit: a request made by a posted call's body for the isle whose
// script waits for that call is that script's child: it goes to the
// script's ChildInbox (true: taken), or is marked as a child of the waiting
// fiber (request->parent) and queued as usual (false).
bool routeChild(const void *queue, std::unique_ptr<Request> &request);

} // namespace ThreadCalls
