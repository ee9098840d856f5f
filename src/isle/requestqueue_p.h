// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "isle/request_p.h"

#include <QtCore/QFuture>
#include <QtCore/QMutex>

#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

class QObject;

// Wakes the worker for queued requests without a posted event: the Lua
// thread's dispatcher, where it can (src/isle/eventdispatcher_p.h).
class WorkSignal
{
public:
    // Any thread: the worker drains the queue soon, on the Lua thread.
    virtual void requestWork() = 0;

protected:
    ~WorkSignal() = default;
};

// The hand-off between callers and the Lua thread: a mutex-guarded deque that
// the worker drains in bursts. Only the push that finds the worker idle wakes
// it (WorkSignal, or a posted event), so a pipeline of N requests costs one
// wake-up, not N.
//
// Every member: any thread. The queue is guarded by m_mutex; what runs (the
// running request, its deadline, the requests in progress) by m_runMutex of
// its own, so the worker's per-request bookkeeping never contends with
// callers pushing (a QMutex does not spin: each contention is a futex sleep
// and wake-up). Lock order: m_mutex, then m_runMutex.
class RequestQueue
{
public:
    // Vectors, not std::deque: an empty one allocates nothing (libstdc++'s
    // deque allocates 576 bytes at its construction: twice per idle isle,
    // and twice per takeBatch() on the request path; issue 18, rows 4, 7f).
    using Batch = std::vector<std::unique_ptr<Request>>;
    // A look at held() (valid until the next hold() or unhold()).
    struct Held
    {
        Batch::const_iterator first, last;
        Batch::const_iterator begin() const { return first; }
        Batch::const_iterator end() const { return last; }
        bool empty() const { return first == last; }
        const std::unique_ptr<Request> &front() const { return *first; }
    };
    enum class PushResult { Queued, Closed, Full };

    explicit RequestQueue(int maxPending) : m_maxPending(maxPending) { }
    ~RequestQueue()
    {
        publishRetired();
        reapRetired();
    }

    // Takes the request on success; on failure the caller still owns it.
    PushResult push(std::unique_ptr<Request> &request);
    // Lua thread: everything queued so far, swapped into `batch` (empty;
    // its storage becomes the queue's); none marks the worker idle (the
    // next push posts a wake-up) unless markIdle is false.
    void takeBatch(Batch &batch, bool markIdle = true);
    // Lua thread: requests taken from the queue that wait in the worker,
    // not started yet (behind the running one, or maxConcurrentRequests).
    // Read freely by the Lua thread; changed only by hold() and unhold(),
    // under m_runMutex, so abandon() can finish them too.
    Held held() const { return {m_held.cbegin() + m_heldFront, m_held.cend()}; }
    // Moves the batch's requests behind the held ones; leaves it empty.
    void hold(Batch &batch);
    std::unique_ptr<Request> unhold(Batch::const_iterator it);
    // Lua thread: how many requests with a parent (children) were pushed
    // since the last call. Counted by the pushing thread, so the worker needs
    // not touch every queued request to know.
    int takeChildCount() { return m_children.exchange(0, std::memory_order_acq_rel); }
    // Lua thread: spins up to `spin` for a request to arrive, without
    // taking the lock; true when one did (lowLatencySpin).
    bool spinForWork(std::chrono::microseconds spin) const;
    // Lua thread: a request of a batch starts (or is skipped). Until then
    // it still counts against maxPending.
    void leftWaiting();
    // Lua thread: a finished request (its promise finished, a blocked
    // caller told) is handed back instead of freed here: the thread that
    // submits next frees it, in the common case the thread that allocated
    // it. A glibc free() on another thread's chunk goes to that thread's
    // arena under its lock -- contended by the submitting thread's own
    // malloc() in a pipeline (issue 18, row 4). Gathered here first and
    // published RetireBatch at a time (one CAS), so the list's head -- read
    // by every submit -- changes rarely, not once a request.
    void retire(std::unique_ptr<Request> request);
    // Lua thread: publishes what retire() gathered (the worker goes idle).
    void publishRetired();
    // Any thread: frees the requests published so far.
    void reapRetired();
    // Any thread: about how many are published and not freed yet (the Lua
    // thread frees them itself when it goes idle with many left).
    int retiredCount() const { return m_retiredCount.load(std::memory_order_relaxed); }
    // Lua thread: the worker's object that wake-up events go to (nullptr:
    // gone), or, when the thread's dispatcher can run the worker's drain
    // itself, that dispatcher (no event to allocate, queue and deliver).
    void attach(QObject *worker, WorkSignal *signal = nullptr);
    // Lua thread: called by abort(), on its thread, once the running request
    // is canceled (the stop monitor may not be watching it); empty: none.
    void setAbortWake(std::function<void()> wake);

    // Lua thread: tells abort() which future to cancel while it runs, and
    // stopPending() what to look at. The request stays alive until
    // clearRunning().
    void setRunning(Request *running, std::chrono::steady_clock::time_point deadline);
    void clearRunning();
    // Lua thread: a request that waits (a suspended fiber) is in progress
    // too: abort() cancels it. Alive until removed.
    void addInProgress(Request *request);
    void removeInProgress(Request *request);

    // No more requests are accepted; a final Shutdown request is queued
    // behind what is already there (shutdown()).
    void close();
    // close(), and cancel everything queued and the running request (~QIsle).
    void abort();
    // Lua thread, around a nested request: watch its deadline too if it
    // comes first; returns the deadline to restore afterwards.
    std::chrono::steady_clock::time_point tightenDeadline(std::chrono::steady_clock::time_point deadline);
    void restoreDeadline(std::chrono::steady_clock::time_point deadline);
    // Any thread: the running request must stop (canceled, past its
    // deadline) or pause (suspend requested, not yet in effect), or its time
    // slice is over while others are ready (QIsleOptions::timeSlice).
    bool stopPending() const;
    // Lua thread: the running fiber's time slice ends at `end` (max: never).
    void setSliceEnd(std::chrono::steady_clock::time_point end);
    // Fibers are ready (written by the scheduler), or a queued request could
    // start now (a free slot): a time slice ends at its end.
    std::atomic<bool> *othersReadyFlag() { return &m_othersReady; }
    // Lua thread: whether another request may start now, and whether the
    // worker holds requests taken from the queue, not started yet.
    void setSlotFree(bool free, bool heldByWorker)
    {
        m_slotFree.store(free, std::memory_order_relaxed);
        m_heldByWorker.store(heldByWorker, std::memory_order_relaxed);
    }
    // Lua thread: the running fiber has a stop of its own (a canceled task).
    void setRunningCanceled(bool canceled) { m_runningCanceled.store(canceled, std::memory_order_relaxed); }
    // Any thread: requests queued, not yet taken by the worker (no lock).
    int queuedCount() const { return m_queued.load(std::memory_order_relaxed); }
    // The VM is being left behind: finish the futures of the running
    // request, the ones in progress and the held ones, so no caller waits
    // for them forever.
    void abandon();
    bool isAborted() const;
    bool isClosed() const;

    // When close() or abort() was first called (shutdown's deadline for waits).
    std::chrono::steady_clock::time_point closedAt() const;

    // Lua thread: the VM is being closed now (finalizers run).
    void markClosing();
    // How long the VM has been closing; -1 ms while it is not.
    std::chrono::milliseconds closingFor() const;

private:
    void wakeLocked();

    mutable QMutex m_mutex;
    Batch m_queue;
    QObject *m_worker = nullptr;
    WorkSignal *m_workSignal = nullptr; // guarded by m_mutex
    std::function<void()> m_abortWake; // guarded by m_mutex
    std::chrono::steady_clock::time_point m_closedAt;
    // Guarded by m_runMutex; written by the Lua thread per request, so on
    // a cache line of its own, away from what pushing callers write.
    alignas(64) mutable QMutex m_runMutex;
    Request *m_running = nullptr; // the worker's; valid until clearRunning()
    std::vector<Request *> m_inProgress; // the worker's; valid until removed
    // See held(): m_held from m_heldFront on (the front advances as they
    // start). Written by the Lua thread under m_runMutex.
    Batch m_held;
    std::size_t m_heldFront = 0;
    static constexpr std::size_t KeptCapacity = 1024; // requests' worth of storage kept once drained
    std::atomic<qint64> m_sliceEnd{std::numeric_limits<qint64>::max()}; // steady clock, ns
    std::atomic<bool> m_othersReady{false};
    std::atomic<bool> m_slotFree{false};
    std::atomic<bool> m_runningCanceled{false};
    std::atomic<bool> m_heldByWorker{false};
    std::chrono::steady_clock::time_point m_runningDeadline; // m_runMutex
    alignas(64) const int m_maxPending;
    std::atomic<int> m_waiting{0}; // pushed, not yet started (maxPending)
    std::atomic<int> m_queued{0};  // m_queue.size(), readable without the lock
    std::atomic<int> m_children{0}; // see takeChildCount()
    bool m_scheduled = false; // a wake-up is posted or the worker is draining
    bool m_closed = false;
    std::atomic<bool> m_aborted{false}; // read per request without the lock
    std::atomic<qint64> m_closingSince{-1}; // steady clock, ms
    // retire(): gathered by the Lua thread, published by it in batches,
    // taken whole by reapRetired().
    static constexpr int RetireBatch = 64;
    Request *m_retiring = nullptr; // the Lua thread's; newest first
    Request *m_retiringLast = nullptr;
    int m_retiringCount = 0;
    alignas(64) std::atomic<Request *> m_retired{nullptr};
    std::atomic<int> m_retiredCount{0};
};
