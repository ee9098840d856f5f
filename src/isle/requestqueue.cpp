// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "isle/requestqueue_p.h"
#include "isle/worker_p.h"
#include "objects/mailbox_p.h"

#include <QtCore/QCoreApplication>

#include <algorithm>

void BlockedCaller::tell()
{
    if (told.exchange(true, std::memory_order_acq_rel))
        return;
    // After this store the blocked thread may return at any moment: its
    // flag is not touched again; the mailbox is kept alive by this copy.
    done->store(true, std::memory_order_release);
    mailbox->notify();
}

bool BlockedCaller::tellResult(QVariant &value)
{
    if (!result || told.exchange(true, std::memory_order_acq_rel))
        return false;
    result->emplace(std::move(value));
    done->store(true, std::memory_order_release);
    mailbox->notify();
    return true;
}

RequestQueue::PushResult RequestQueue::push(std::unique_ptr<Request> &request)
{
    QMutexLocker lock(&m_mutex);
    if (m_closed)
        return PushResult::Closed;
    // Counted only under a limit: both threads writing one counter per
    // request moves its cache line between their CPUs each time.
    if (m_maxPending > 0) {
        if (m_waiting.load(std::memory_order_relaxed) >= m_maxPending)
            return PushResult::Full;
        m_waiting.fetch_add(1, std::memory_order_relaxed);
    }
    if (request->parent)
        m_children.fetch_add(1, std::memory_order_relaxed);
    m_queue.push_back(std::move(request));
    m_queued.store(int(m_queue.size()), std::memory_order_release);
    wakeLocked();
    return PushResult::Queued;
}

void RequestQueue::wakeLocked()
{
    if (m_scheduled || !m_worker)
        return;
    m_scheduled = true;
    // Thread-safe; the worker and its dispatcher cannot be destroyed
    // meanwhile, since they detach under this mutex before they go.
    if (m_workSignal)
        m_workSignal->requestWork();
    else
        QCoreApplication::postEvent(m_worker, new QEvent(Worker::DrainEvent));
}

void RequestQueue::takeBatch(Batch &batch, bool markIdle)
{
    Q_ASSERT(batch.empty());
    QMutexLocker lock(&m_mutex);
    batch.swap(m_queue);
    m_queued.store(0, std::memory_order_relaxed);
    if (batch.empty() && markIdle)
        m_scheduled = false;
}

void RequestQueue::retire(std::unique_ptr<Request> request)
{
    Request *r = request.release();
    r->nextRetired = m_retiring;
    m_retiring = r;
    if (!m_retiringLast)
        m_retiringLast = r;
    if (++m_retiringCount >= RetireBatch)
        publishRetired();
}

void RequestQueue::publishRetired()
{
    if (!m_retiring)
        return;
    m_retiringLast->nextRetired = m_retired.load(std::memory_order_relaxed);
    while (!m_retired.compare_exchange_weak(m_retiringLast->nextRetired, m_retiring, std::memory_order_release,
                                            std::memory_order_relaxed)) {
    }
    m_retiredCount.fetch_add(m_retiringCount, std::memory_order_relaxed);
    m_retiring = m_retiringLast = nullptr;
    m_retiringCount = 0;
}

void RequestQueue::reapRetired()
{
    // Popping the whole list at once: no ABA, whoever pushes meanwhile.
    if (!m_retired.load(std::memory_order_relaxed))
        return;
    Request *r = m_retired.exchange(nullptr, std::memory_order_acquire);
    int n = 0;
    while (r) {
        Request *next = r->nextRetired;
        delete r;
        r = next;
        ++n;
    }
    m_retiredCount.fetch_sub(n, std::memory_order_relaxed);
}

bool RequestQueue::spinForWork(std::chrono::microseconds spin) const
{
    const auto end = std::chrono::steady_clock::now() + spin;
    do {
        for (int i = 0; i < 64; ++i) {
            if (m_queued.load(std::memory_order_acquire) > 0)
                return true;
        }
    } while (std::chrono::steady_clock::now() < end);
    return false;
}

void RequestQueue::attach(QObject *worker, WorkSignal *signal)
{
    QMutexLocker lock(&m_mutex);
    m_worker = worker;
    m_workSignal = worker ? signal : nullptr;
    m_scheduled = false;
    if (m_worker && !m_queue.empty())
        wakeLocked();
}

void RequestQueue::setAbortWake(std::function<void()> wake)
{
    QMutexLocker lock(&m_mutex);
    m_abortWake = std::move(wake);
}

// abort() sets m_aborted before it takes m_runMutex: either it sees the
// request registered here, or this sees m_aborted.
void RequestQueue::setRunning(Request *running, std::chrono::steady_clock::time_point deadline)
{
    QMutexLocker lock(&m_runMutex);
    m_running = running;
    m_runningDeadline = deadline;
    if (m_aborted)
        m_running->state.cancel();
}

void RequestQueue::clearRunning()
{
    QMutexLocker lock(&m_runMutex);
    m_running = nullptr;
}

void RequestQueue::hold(Batch &batch)
{
    QMutexLocker lock(&m_runMutex);
    if (m_heldFront == m_held.size()) {
        m_held.clear();
        m_heldFront = 0;
        m_held.swap(batch); // the batch's storage; the queue gets m_held's next
    } else {
        // The started ones go once they are half: each request moves O(1)
        // times on average.
        if (m_heldFront >= m_held.size() / 2) {
            m_held.erase(m_held.begin(), m_held.begin() + std::ptrdiff_t(m_heldFront));
            m_heldFront = 0;
        }
        std::move(batch.begin(), batch.end(), std::back_inserter(m_held));
        batch.clear();
    }
}

std::unique_ptr<Request> RequestQueue::unhold(Batch::const_iterator it)
{
    QMutexLocker lock(&m_runMutex);
    const auto at = m_held.begin() + (it - m_held.cbegin());
    auto request = std::move(*at);
    if (std::size_t(at - m_held.begin()) == m_heldFront) { // the common case: the front advances
        if (++m_heldFront == m_held.size()) {
            m_held.clear();
            m_heldFront = 0;
            // A flood's storage is not kept once it has drained.
            if (m_held.capacity() > KeptCapacity)
                Batch().swap(m_held);
        }
    } else {
        m_held.erase(at);
    }
    return request;
}

void RequestQueue::addInProgress(Request *request)
{
    QMutexLocker lock(&m_runMutex);
    m_inProgress.push_back(request);
    if (m_aborted)
        request->state.cancel();
}

void RequestQueue::removeInProgress(Request *request)
{
    QMutexLocker lock(&m_runMutex);
    m_inProgress.erase(std::remove(m_inProgress.begin(), m_inProgress.end(), request), m_inProgress.end());
}

std::chrono::steady_clock::time_point RequestQueue::closedAt() const
{
    QMutexLocker lock(&m_mutex);
    return m_closedAt;
}

void RequestQueue::close()
{
    QMutexLocker lock(&m_mutex);
    if (m_closed)
        return;
    m_closed = true;
    m_closedAt = std::chrono::steady_clock::now();
    m_queue.push_back(std::make_unique<Request>(Request::Type::Shutdown, QIsleRequestOptions{}));
    wakeLocked();
}

void RequestQueue::abort()
{
    Batch canceled;
    {
        QMutexLocker lock(&m_mutex);
        if (!m_closed) {
            m_closed = true;
            m_closedAt = std::chrono::steady_clock::now();
            m_queue.push_back(std::make_unique<Request>(Request::Type::Shutdown, QIsleRequestOptions{}));
            wakeLocked();
        }
        m_aborted = true;
        {
            QMutexLocker runLock(&m_runMutex);
            if (m_running)
                m_running->state.cancel();
            for (Request *request : m_inProgress)
                request->state.cancel(); // waiting requests: the worker stops them at their waits
        }
        if (m_abortWake) // outside m_runMutex: the monitor takes it under its own lock
            m_abortWake();
        // Keep the Shutdown request: the worker must still close the VM.
        Batch kept;
        for (auto &request : m_queue) {
            if (request->type == Request::Type::Shutdown) {
                kept.push_back(std::move(request));
            } else {
                canceled.push_back(std::move(request));
                if (m_maxPending > 0)
                    m_waiting.fetch_sub(1, std::memory_order_relaxed);
            }
        }
        m_queue.swap(kept);
        m_queued.store(int(m_queue.size()), std::memory_order_relaxed);
    }
    // Finishing outside the lock: continuations attached to these futures
    // may run right here.
    for (auto &request : canceled) {
        request->promise.future().cancel();
        request->promise.finish();
    }
}

bool RequestQueue::isAborted() const
{
    return m_aborted.load(std::memory_order_acquire);
}

bool RequestQueue::isClosed() const
{
    QMutexLocker lock(&m_mutex);
    return m_closed;
}

namespace {
qint64 steadyMs()
{
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}
} // namespace

void RequestQueue::markClosing()
{
    m_closingSince.store(steadyMs(), std::memory_order_release);
}

std::chrono::milliseconds RequestQueue::closingFor() const
{
    const qint64 since = m_closingSince.load(std::memory_order_acquire);
    return std::chrono::milliseconds(since < 0 ? -1 : steadyMs() - since);
}

void RequestQueue::leftWaiting()
{
    if (m_maxPending > 0)
        m_waiting.fetch_sub(1, std::memory_order_relaxed);
}

void RequestQueue::abandon()
{
    QMutexLocker lock(&m_runMutex);
    // The worker may still finish it one day: reportFinished is idempotent
    // and thread-safe, so whoever comes second does nothing. A thread
    // blocked on it is told now (the request itself is never destroyed).
    if (m_running) {
        m_running->state.cancel();
        m_running->state.reportFinished();
        if (m_running->caller.done)
            m_running->caller.tell();
    }
    for (Request *request : m_inProgress) {
        request->state.cancel();
        request->state.reportFinished();
        if (request->caller.done)
            request->caller.tell();
    }
    // Held ones stay where they are: the worker may still come back and
    // drop them (canceled, as it is aborted by now).
    for (const auto &request : held()) {
        request->state.cancel();
        request->state.reportFinished();
        if (request->caller.done)
            request->caller.tell();
    }
}

bool RequestQueue::stopPending() const
{
    QMutexLocker lock(&m_runMutex);
    if (!m_running)
        return false;
    const auto now = std::chrono::steady_clock::now();
    if (m_running->state.isCanceled() || m_running->state.isSuspending() || now >= m_runningDeadline
        || m_runningCanceled.load(std::memory_order_relaxed))
        return true;
    const qint64 sliceEnd = m_sliceEnd.load(std::memory_order_relaxed);
    return sliceEnd != std::numeric_limits<qint64>::max()
            && now.time_since_epoch().count() >= sliceEnd
            && (m_othersReady.load(std::memory_order_relaxed)
                || (m_slotFree.load(std::memory_order_relaxed)
                    && (m_queued.load(std::memory_order_relaxed) > 0 || m_heldByWorker.load(std::memory_order_relaxed))));
}

void RequestQueue::setSliceEnd(std::chrono::steady_clock::time_point end)
{
    m_sliceEnd.store(end == std::chrono::steady_clock::time_point::max()
                             ? std::numeric_limits<qint64>::max()
                             : qint64(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                              end.time_since_epoch()).count()),
                     std::memory_order_relaxed);
}

std::chrono::steady_clock::time_point RequestQueue::tightenDeadline(std::chrono::steady_clock::time_point deadline)
{
    QMutexLocker lock(&m_runMutex);
    const auto previous = m_runningDeadline;
    m_runningDeadline = std::min(previous, deadline);
    return previous;
}

void RequestQueue::restoreDeadline(std::chrono::steady_clock::time_point deadline)
{
    QMutexLocker lock(&m_runMutex);
    m_runningDeadline = deadline;
}
