// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "pool/relay_p.h"

#include "pool/pool_p.h"

#include <QtCore/QMetaObject>

// Why a thread, and why watchers: in Qt 6.4 nothing but a QFutureWatcher
// learns that a future was canceled, suspended or given a result before it
// finishes (QFuture::then runs at the finish, holds one continuation per
// future, and the caller's own .then() would replace ours). A watcher posts
// to its thread's event loop; the caller's thread may have none, so the
// watchers live here. Only held requests (every isle leased, or an isle
// still spawning) pay for it: a request bound at submission gets its isle's
// own future, untouched.

namespace {

void relayProgress(QFutureInterface<QVariant> &promise, const QFuture<QVariant> &from)
{
    const int minimum = from.progressMinimum();
    const int maximum = from.progressMaximum();
    if (minimum != promise.progressMinimum() || maximum != promise.progressMaximum())
        promise.setProgressRange(minimum, maximum);
    promise.setProgressValueAndText(from.progressValue(), from.progressText());
}

// Result i of `from` into `promise`, unless already there or gone.
void relayResult(QFutureInterface<QVariant> &promise, const QFuture<QVariant> &from, int index)
{
    if (promise.isResultReadyAt(index) || !from.isResultReadyAt(index))
        return;
    QVariant value;
    try {
        value = from.resultAt(index); // throws the stored error if `from` failed meanwhile
    } catch (const QException &) {
        return; // the finish relays the error
    }
    promise.reportResult(value, index);
}

} // namespace

void finishFrom(QFutureInterface<QVariant> &promise, const QFuture<QVariant> &isleFuture)
{
    if (promise.isFinished())
        return;
    QFuture<QVariant> from = isleFuture;
    relayProgress(promise, from);
    try {
        from.waitForFinished(); // finished already; rethrows its error
    } catch (...) {
        promise.reportException(std::current_exception());
        promise.reportFinished();
        return;
    }
    // Results 1..n (emits) may be there without result 0 (a canceled
    // request): walk on from 1 while they last.
    for (int i = 0; i == 0 || from.isResultReadyAt(i); ++i)
        relayResult(promise, from, i);
    if (from.isCanceled() && !from.isResultReadyAt(0))
        promise.cancel();
    promise.reportFinished();
}

RequestRelay::RequestRelay(QIslePoolPrivate *pool, std::shared_ptr<HeldRequest> held)
    : m_pool(pool), m_held(std::move(held))
{
    // Children move with this object to the relay thread.
    m_caller.setParent(this);
    m_isle.setParent(this);
}

RequestRelay::~RequestRelay()
{
    if (m_held->promise.isFinished())
        return;
    if (m_attached && m_isle.future().isFinished()) {
        finishFrom(m_held->promise, m_isle.future());
    } else {
        m_held->promise.cancel();
        m_held->promise.reportFinished();
    }
}

void RequestRelay::start()
{
    connect(&m_caller, &QFutureWatcherBase::canceled, this, &RequestRelay::callerCanceled);
    connect(&m_caller, &QFutureWatcherBase::suspending, this, &RequestRelay::callerSuspending);
    connect(&m_caller, &QFutureWatcherBase::resumed, this, &RequestRelay::callerResumed);
    connect(&m_caller, &QFutureWatcherBase::finished, this, &QObject::deleteLater);
    // Replays the current state: a cancel that came before is seen now.
    m_caller.setFuture(m_held->promise.future());
}

void RequestRelay::attach(const QFuture<QVariant> &isleFuture)
{
    m_attached = true;
    connect(&m_isle, &QFutureWatcherBase::resultsReadyAt, this, &RequestRelay::isleResults);
    connect(&m_isle, &QFutureWatcherBase::progressRangeChanged, this, &RequestRelay::isleProgress);
    connect(&m_isle, &QFutureWatcherBase::progressValueChanged, this, &RequestRelay::isleProgress);
    connect(&m_isle, &QFutureWatcherBase::progressTextChanged, this, &RequestRelay::isleProgress);
    connect(&m_isle, &QFutureWatcherBase::finished, this, &RequestRelay::isleFinished);
    m_isle.setFuture(isleFuture);
    QFuture<QVariant> caller = m_held->promise.future();
    if (caller.isCanceled())
        m_isle.cancel();
    else if (caller.isSuspending() || caller.isSuspended())
        m_isle.suspend();
}

void RequestRelay::callerCanceled()
{
    if (m_attached) {
        m_isle.cancel(); // the isle stops it; isleFinished finishes the caller's future
        return;
    }
    // Still waiting in the pool or for its isle's spawn: finish it now.
    m_pool->heldCanceled(m_held);
}

void RequestRelay::callerSuspending()
{
    if (m_attached)
        m_isle.suspend();
}

void RequestRelay::callerResumed()
{
    if (m_attached)
        m_isle.resume();
}

void RequestRelay::isleResults(int begin, int end)
{
    const QFuture<QVariant> from = m_isle.future();
    for (int i = begin; i < end; ++i)
        relayResult(m_held->promise, from, i);
}

void RequestRelay::isleProgress()
{
    relayProgress(m_held->promise, m_isle.future());
}

void RequestRelay::isleFinished()
{
    // The isle's load dropped when its future finished, before this.
    finishFrom(m_held->promise, m_isle.future());
    m_pool->heldFinished(m_held);
    deleteLater();
}

PoolRelay::PoolRelay() : m_thread(new QThread), m_context(new QObject)
{
    m_thread->setObjectName(QStringLiteral("QIslePool relay"));
    m_context->moveToThread(m_thread);
    m_thread->start();
}

PoolRelay::~PoolRelay()
{
    stop();
    delete m_context; // with any relay left: it finishes its request (see ~RequestRelay)
    delete m_thread;
}

void PoolRelay::adopt(QIsle *isle)
{
    isle->moveToThread(m_thread);
}

void PoolRelay::destroy(QIsle *isle)
{
    QMutexLocker lock(&m_mutex);
    if (!m_running || isRelayThread()) {
        lock.unlock();
        delete isle;
        return;
    }
    QMetaObject::invokeMethod(m_context, [isle] { delete isle; }, Qt::BlockingQueuedConnection);
}

RequestRelay *PoolRelay::watch(QIslePoolPrivate *pool, const std::shared_ptr<HeldRequest> &held)
{
    auto *relay = new RequestRelay(pool, held);
    relay->moveToThread(m_thread);
    QMetaObject::invokeMethod(relay, [relay, context = m_context] {
        relay->setParent(context);
        relay->start();
    }, Qt::QueuedConnection);
    return relay;
}

void PoolRelay::forwarded(RequestRelay *relay, const QFuture<QVariant> &isleFuture)
{
    QMetaObject::invokeMethod(relay, [relay, isleFuture] { relay->attach(isleFuture); }, Qt::QueuedConnection);
}

void PoolRelay::stop()
{
    {
        QMutexLocker lock(&m_mutex);
        if (!m_running)
            return;
        m_running = false;
    }
    // Queued behind everything posted so far (isle futures finished by
    // shutdown or destruction included), so those are relayed first.
    QMetaObject::invokeMethod(m_context, [] { QThread::currentThread()->quit(); }, Qt::QueuedConnection);
    m_thread->wait();
}
