// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "objects/mailbox_p.h"

#include "isle/request_p.h"

#include <QtCore/QHash>
#include <QtCore/QThreadPool>

#include <exception>
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
// pool waits for the future and wakes the blocked thread's mailbox.
QThreadPool &watcherPool()
{
    static QThreadPool *pool = [] {
        auto *p = new QThreadPool; // process lifetime, like the registry
        p->setMaxThreadCount(4096);
        p->setObjectName(QStringLiteral("QIsle future watchers"));
        return p;
    }();
    return *pool;
}

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
    ChildInbox *inbox = t_currentInbox;
    return inbox && inbox->queue() == queue && inbox->push(request);
}

// ---------------------------------------------------------------------------
// PostedCall

PostedCall::PostedCall(QPointer<QObject> target, QThread *thread, Body body, QString what)
    : m_target(std::move(target)), m_thread(thread), m_body(std::move(body)), m_what(std::move(what))
{
    m_promise.start();
}

PostedCall::~PostedCall()
{
    // Never ran: its event was deleted with its target (or its thread ended).
    drop(QIsleError(QIsleError::Kind::Runtime, QStringLiteral("%1 was destroyed").arg(m_what)));
}

void PostedCall::finishWith(const QVariant *result, const QIsleError *error)
{
    if (error)
        m_promise.setException(*error);
    else if (result)
        m_promise.addResult(*result, 0);
    else
        m_promise.future().cancel();
    m_promise.finish();
    if (m_waiter)
        m_waiter->notify();
}

bool PostedCall::drop(const QIsleError &error)
{
    int expected = Pending;
    if (!m_state.compare_exchange_strong(expected, Done))
        return false;
    m_body = nullptr;
    finishWith(nullptr, &error);
    return true;
}

void PostedCall::cancel()
{
    int expected = Pending;
    if (!m_state.compare_exchange_strong(expected, Done))
        return; // running: it finishes its future itself; nobody reads the answer
    finishWith(nullptr, nullptr);
}

void PostedCall::run()
{
    int expected = Pending;
    if (!m_state.compare_exchange_strong(expected, Running))
        return;
    if (m_promise.isCanceled()) {
        // Whoever waited gave up (a stopped script's wait cancels the future):
        // a call that has not started is dropped.
        m_state = Done;
        m_body = nullptr;
        finishWith(nullptr, nullptr);
        return;
    }
    QObject *target = m_target.data();
    if (!target) {
        m_state = Done;
        m_body = nullptr;
        const QIsleError error(QIsleError::Kind::Runtime, QStringLiteral("%1 was destroyed").arg(m_what));
        finishWith(nullptr, &error);
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
    struct InboxScope
    {
        ChildInbox *previous = t_currentInbox;
        explicit InboxScope(ChildInbox *inbox) { t_currentInbox = inbox; }
        ~InboxScope() { t_currentInbox = previous; }
    } inboxScope(m_children.get());
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
    finishWith(&result, error ? &*error : nullptr);
}

void PostedCall::post(const std::shared_ptr<PostedCall> &call)
{
    ThreadMailbox::of(call->thread())->post(call);
    // Delivered through the target's own event queue too, for when its
    // thread is not blocked in QIsle. If the target is destroyed first, the
    // event is deleted with it, and so is this holder: the call is dropped.
    QObject *target = call->m_target.data();
    if (!target) {
        call->drop(QIsleError(QIsleError::Kind::Runtime, QStringLiteral("%1 was destroyed").arg(call->m_what)));
        return;
    }
    QMetaObject::invokeMethod(target, [call] { call->run(); }, Qt::QueuedConnection);
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
    QMutexLocker lock(&m_mutex);
    // Forget calls that ran or were dropped (their holder is gone).
    while (!m_calls.empty() && m_calls.front().expired())
        m_calls.pop_front();
    m_calls.push_back(call);
    m_wake.wakeAll();
}

void ThreadMailbox::notify()
{
    QMutexLocker lock(&m_mutex);
    ++m_generation;
    m_wake.wakeAll();
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
    QMutexLocker lock(&m_mutex);
    for (;;) {
        if (done())
            return true;
        if (!m_calls.empty()) {
            auto calls = takeLocked();
            lock.unlock();
            runAll(calls);
            lock.relock();
            continue;
        }
        if (deadline.hasExpired())
            return false;
        m_wake.wait(&m_mutex, deadline);
    }
}

void ThreadMailbox::runPosted()
{
    QMutexLocker lock(&m_mutex);
    auto calls = takeLocked();
    lock.unlock();
    runAll(calls);
}

// ---------------------------------------------------------------------------

void ThreadCalls::waitForFinished(const QFuture<QVariant> &future, bool privateFuture)
{
    if (future.isFinished())
        return;
    std::shared_ptr<ThreadMailbox> mailbox = ThreadMailbox::current();
    if (privateFuture) {
        // Sync: runs in the thread that finishes the future (or at once).
        QFuture<QVariant> watched = future;
        watched.then(QtFuture::Launch::Sync, [mailbox](const QFuture<QVariant> &) { mailbox->notify(); })
                .onCanceled([mailbox] { mailbox->notify(); });
    } else {
        watcherPool().start([f = QFuture<QVariant>(future), mailbox]() mutable {
            try {
                f.waitForFinished();
            } catch (...) {
                // the blocked thread reads the outcome itself
            }
            mailbox->notify();
        });
    }
    const QFuture<QVariant> watched = future;
    mailbox->waitUntil([&watched] { return watched.isFinished(); });
}
