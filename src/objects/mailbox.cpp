// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "objects/mailbox_p.h"

#include "isle/request_p.h"

#include <QtCore/QCoreApplication>
#include <QtCore/QEvent>
#include <QtCore/QHash>

#include <exception>
#include <thread>
#include <optional>

namespace {

struct Registry
{
    QMutex mutex;
    QHash<QThread *, std::shared_ptr<ThreadMailbox>> mailboxes;
};

Registry &registry()
{
    static auto *r = new Registry; // process lifetime: threads may outlive statics
    return *r;
}

// Watches futures that belong to the application (waitFor): a QFuture keeps
// one continuation only, so none may be attached to them. A thread of this
// pool waits for the future and wakes the blocked thread's mailbox; every
// job gets a thread of its own at once (a job may wait for long). Plain
// std:: threads, which ThreadSanitizer follows.
class WatcherPool
{
public:
    void start(std::function<void()> job)
    {
        std::lock_guard lock(m_mutex);
        m_jobs.push_back(std::move(job));
        if (qsizetype(m_jobs.size()) > m_idle)
            std::thread([this] { loop(); }).detach();
        else
            m_wake.notify_one();
    }

private:
    void loop()
    {
        std::unique_lock lock(m_mutex);
        for (;;) {
            while (m_jobs.empty()) {
                ++m_idle;
                m_wake.wait(lock);
                --m_idle;
            }
            std::function<void()> job = std::move(m_jobs.front());
            m_jobs.pop_front();
            lock.unlock();
            job();
            job = nullptr;
            lock.lock();
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::deque<std::function<void()>> m_jobs;
    qsizetype m_idle = 0;
};

WatcherPool &watcherPool()
{
    static auto *pool = new WatcherPool; // process lifetime: its threads never end
    return *pool;
}

// The posted call whose body runs in this thread now, if any.
thread_local const PostedCall *t_currentCall = nullptr;
thread_local ChildInbox *t_currentInbox = nullptr;

} // namespace

// ---------------------------------------------------------------------------
// ChildInbox

ChildInbox *ChildInbox::current()
{
    return t_currentInbox;
}

bool ChildInbox::push(std::unique_ptr<Request> &request)
{
    {
        QMutexLocker lock(&m_mutex);
        if (m_closed)
            return false;
        m_requests.push_back(std::move(request));
        m_count.store(int(m_requests.size()), std::memory_order_release);
    }
    m_luaThread->notify();
    return true;
}

std::deque<std::unique_ptr<Request>> ChildInbox::take()
{
    QMutexLocker lock(&m_mutex);
    std::deque<std::unique_ptr<Request>> requests;
    requests.swap(m_requests);
    m_count.store(0, std::memory_order_release);
    return requests;
}

std::deque<std::unique_ptr<Request>> ChildInbox::close()
{
    QMutexLocker lock(&m_mutex);
    m_closed = true;
    std::deque<std::unique_ptr<Request>> requests;
    requests.swap(m_requests);
    m_count.store(0, std::memory_order_release);
    return requests;
}

bool ThreadCalls::routeChild(const void *queue, std::unique_ptr<Request> &request)
{
    if (ChildInbox *inbox = t_currentInbox; inbox && inbox->queue() == queue)
        return inbox->push(request);
    if (const PostedCall *call = t_currentCall; call && call->parentQueue() == queue)
        request->parent = call->parentSerial();
    return false;
}

// ---------------------------------------------------------------------------
// Events that run code in a receiver's thread

namespace {

class RunEvent : public QEvent
{
public:
    explicit RunEvent(std::function<void()> fn) : QEvent(type()), m_fn(std::move(fn))
    {
        m_published.store(true, std::memory_order_release);
    }
    ~RunEvent() override
    {
        // Qt hands the event over under its own (uninstrumented) locks; this
        // pair shows ThreadSanitizer the edge, also when the event is deleted
        // by removePostedEvents with its receiver.
        if (m_published.load(std::memory_order_acquire))
            m_fn();
    }
    static QEvent::Type type()
    {
        static const auto t = QEvent::Type(QEvent::registerEventType());
        return t;
    }

private:
    std::function<void()> m_fn;
    std::atomic<bool> m_published{false};
};

} // namespace

void ThreadCalls::postToThreadOf(QObject *receiver, std::function<void()> fn)
{
    QCoreApplication::postEvent(receiver, new RunEvent(std::move(fn)));
}

// ---------------------------------------------------------------------------
// HandOff

void HandOff::end(Outcome outcome)
{
    if (m_ended.exchange(true))
        return;
    if (QObject *finisher = m_finisher.data(); finisher && m_finisherThread != QThread::currentThread()) {
        // A finisher destroyed first deletes the event: it finishes there.
        ThreadCalls::postToThreadOf(finisher, [self = shared_from_this(), outcome] { self->complete(outcome); });
        return;
    }
    complete(outcome);
}

void HandOff::complete(const Outcome &outcome)
{
    if (outcome.error)
        m_promise.setException(*outcome.error);
    else if (outcome.canceled)
        m_promise.future().cancel();
    else
        m_promise.addResult(outcome.result, 0);
    m_promise.finish();
    if (m_waiter)
        m_waiter->notify();
}

// ---------------------------------------------------------------------------
// PostedCall

PostedCall::PostedCall(QPointer<QObject> target, QThread *thread, Body body, QString what)
    : m_target(std::move(target)), m_thread(thread), m_body(std::move(body)), m_what(std::move(what))
{
}

PostedCall::~PostedCall()
{
    // Never ran: its event was deleted with its target (or its thread ended).
    drop(QIsleError(QIsleError::Kind::Runtime, QStringLiteral("%1 was destroyed").arg(m_what)));
}

bool PostedCall::drop(const QIsleError &error)
{
    int expected = Pending;
    if (!m_state.compare_exchange_strong(expected, Done))
        return false;
    m_body = nullptr;
    m_handOff->fail(error);
    return true;
}

void PostedCall::cancel()
{
    int expected = Pending;
    if (!m_state.compare_exchange_strong(expected, Done))
        return; // running: it finishes its future itself; nobody reads the answer
    m_handOff->cancel();
}

void PostedCall::run()
{
    int expected = Pending;
    if (!m_state.compare_exchange_strong(expected, Running))
        return;
    if (m_handOff->isCanceled()) {
        // Whoever waited gave up (a stopped script's wait cancels the future):
        // a call that has not started is dropped.
        m_state = Done;
        m_body = nullptr;
        m_handOff->cancel();
        return;
    }
    QObject *target = m_target.data();
    if (!target) {
        m_state = Done;
        m_body = nullptr;
        m_handOff->fail(QIsleError(QIsleError::Kind::Runtime, QStringLiteral("%1 was destroyed").arg(m_what)));
        return;
    }
    if (QThread *now = target->thread(); now != QThread::currentThread()) {
        // Moved to another thread since it was posted: follow it there.
        m_thread.store(now, std::memory_order_release);
        m_state = Pending;
        if (now)
            post(shared_from_this());
        else
            drop(QIsleError(QIsleError::Kind::Runtime, QStringLiteral("%1 has no thread").arg(m_what)));
        return;
    }
    Body body = std::move(m_body);
    m_body = nullptr;
    QVariant result;
    std::optional<QIsleError> error;
    struct CallScope
    {
        ChildInbox *previousInbox = t_currentInbox;
        const PostedCall *previousCall = t_currentCall;
        CallScope(ChildInbox *inbox, const PostedCall *call)
        {
            t_currentInbox = inbox;
            t_currentCall = call;
        }
        ~CallScope()
        {
            t_currentInbox = previousInbox;
            t_currentCall = previousCall;
        }
    } callScope(m_children.get(), this);
    try {
        result = body(target);
    } catch (const QIsleError &e) {
        error = e;
    } catch (const std::bad_alloc &) {
        error = QIsleError(QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    } catch (const std::exception &e) {
        error = QIsleError(QIsleError::Kind::Callback, QString::fromLocal8Bit(e.what()));
    } catch (...) {
        error = QIsleError(QIsleError::Kind::Callback, QStringLiteral("a host function threw an unknown C++ exception"));
    }
    body = nullptr; // its captures die in this thread
    m_state = Done;
    if (error)
        m_handOff->fail(*error);
    else
        m_handOff->fulfil(result);
}

void PostedCall::post(const std::shared_ptr<PostedCall> &call)
{
    ThreadMailbox::of(call->thread())->post(call);
    QObject *target = call->m_target.data();
    if (!target) {
        call->drop(QIsleError(QIsleError::Kind::Runtime, QStringLiteral("%1 was destroyed").arg(call->m_what)));
        return;
    }
    // Delivered through the target's own event queue too, for when its
    // thread is not blocked in QIsle: run after delivery, or dropped
    // ("destroyed") when the event goes with a target destroyed first.
    ThreadCalls::postToThreadOf(target, [call] { call->run(); });
}

// ---------------------------------------------------------------------------
// ThreadMailbox

std::shared_ptr<ThreadMailbox> ThreadMailbox::of(QThread *thread)
{
    Registry &r = registry();
    QMutexLocker lock(&r.mutex);
    std::shared_ptr<ThreadMailbox> &mailbox = r.mailboxes[thread];
    if (!mailbox)
        mailbox = std::make_shared<ThreadMailbox>();
    return mailbox;
}

void ThreadMailbox::post(const std::weak_ptr<PostedCall> &call)
{
    std::lock_guard lock(m_mutex);
    // Forget calls that ran or were dropped (their holder is gone).
    while (!m_calls.empty() && m_calls.front().expired())
        m_calls.pop_front();
    m_calls.push_back(call);
    m_wake.notify_all();
}

void ThreadMailbox::notify()
{
    std::lock_guard lock(m_mutex);
    ++m_generation;
    m_wake.notify_all();
}

std::deque<std::weak_ptr<PostedCall>> ThreadMailbox::takeLocked()
{
    std::deque<std::weak_ptr<PostedCall>> calls;
    calls.swap(m_calls);
    return calls;
}

void ThreadMailbox::runAll(std::deque<std::weak_ptr<PostedCall>> &calls)
{
    QThread *self = QThread::currentThread();
    for (const std::weak_ptr<PostedCall> &weak : calls) {
        // A thread object reused at the same address must not run calls
        // meant for its predecessor's objects.
        if (std::shared_ptr<PostedCall> call = weak.lock(); call && call->thread() == self)
            call->run();
    }
}

bool ThreadMailbox::waitUntil(const std::function<bool()> &done, QDeadlineTimer deadline)
{
    std::unique_lock lock(m_mutex);
    for (;;) {
        if (done())
            return true;
        if (!m_calls.empty()) {
            auto calls = takeLocked();
            lock.unlock();
            runAll(calls);
            lock.lock();
            continue;
        }
        if (deadline.hasExpired())
            return false;
        if (deadline.isForever())
            m_wake.wait(lock);
        else
            m_wake.wait_until(lock, deadline.deadline<std::chrono::steady_clock>());
    }
}

void ThreadMailbox::runPosted()
{
    std::unique_lock lock(m_mutex);
    auto calls = takeLocked();
    lock.unlock();
    runAll(calls);
}

// ---------------------------------------------------------------------------

void ThreadCalls::waitUntil(const std::atomic<bool> &flag)
{
    if (flag.load(std::memory_order_acquire))
        return;
    ThreadMailbox::current()->waitUntil([&flag] { return flag.load(std::memory_order_acquire); });
}

void ThreadCalls::waitForFinished(const QFuture<QVariant> &future)
{
    if (future.isFinished())
        return;
    std::shared_ptr<ThreadMailbox> mailbox = ThreadMailbox::current();
    watcherPool().start([f = QFuture<QVariant>(future), mailbox]() mutable {
        try {
            f.waitForFinished();
        } catch (...) {
            // the blocked thread reads the outcome itself
        }
        mailbox->notify();
    });
    const QFuture<QVariant> f = future;
    mailbox->waitUntil([&f] { return f.isFinished(); });
}
