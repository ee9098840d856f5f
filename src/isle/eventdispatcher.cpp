// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "isle/eventdispatcher_p.h"

#ifdef QISLE_UNIX_DISPATCHER

#include <QtCore/QCoreApplication>
#include <QtCore/private/qobject_p.h>
#include <QtCore/private/qthread_p.h>

#ifdef __SANITIZE_THREAD__
// Qt is not instrumented: this shows ThreadSanitizer the order Qt gives
// posted events (queued under the receiving thread's mutex, then wakeUp();
// read in processEvents()).
extern "C" void __tsan_acquire(void *addr);
extern "C" void __tsan_release(void *addr);
#endif

#ifdef Q_OS_LINUX
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace {

// timeout: relative; nullptr waits for a wake-up alone.
void futexWait(std::atomic<int> *word, int expected, const timespec *timeout)
{
    syscall(SYS_futex, reinterpret_cast<int *>(word), FUTEX_WAIT_PRIVATE, expected, timeout, nullptr, 0);
}

void futexWakeOne(std::atomic<int> *word)
{
    syscall(SYS_futex, reinterpret_cast<int *>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free);

} // namespace

// What QEventDispatcherUNIX::processEvents does, with the futex for its
// poll(): posted events, then a sleep until a wake-up or the next timer,
// then the timers due.
bool IsleEventDispatcher::processEvents(QEventLoop::ProcessEventsFlags flags)
{
#ifdef __SANITIZE_THREAD__
    __tsan_acquire(this);
#endif
    auto *d = static_cast<QEventDispatcherUNIXPrivate *>(QObjectPrivate::get(this));
    const bool includeNotifiers = !(flags & QEventLoop::ExcludeSocketNotifiers);
    if (m_qtPollDepth > 0 || (includeNotifiers && !d->socketNotifiers.isEmpty()))
        return processEventsInQtPoll(flags);

    d->interrupt.storeRelaxed(0);
    // Taken before the posted events are sent: a wake-up after this is one
    // for an event the send below may not see, and keeps the thread awake.
    const int was = m_wake.fetch_and(~(WakePending | WorkPending), std::memory_order_acquire);
    bool woken = was & (WakePending | WorkPending);
    Q_EMIT awake();
    QCoreApplication::sendPostedEvents();
    runWork(was);
    if (includeNotifiers && !d->socketNotifiers.isEmpty()) // an event made one
        return processEventsInQtPoll(flags) || woken;

    const bool includeTimers = !(flags & QEventLoop::X11ExcludeTimers);
    const bool canWait = (flags & QEventLoop::WaitForMoreEvents) && d->threadData.loadRelaxed()->canWaitLocked()
            && !d->interrupt.loadRelaxed();
    if (canWait)
        Q_EMIT aboutToBlock();
    if (d->interrupt.loadRelaxed())
        return false;
    if (canWait) {
        timespec wait = {0, 0};
        const bool timers = includeTimers && d->timerList.timerWait(wait);
        int expected = 0;
        if ((!timers || wait.tv_sec > 0 || wait.tv_nsec > 0)
            && m_wake.compare_exchange_strong(expected, Sleeping, std::memory_order_acq_rel)) {
            futexWait(&m_wake, Sleeping, timers ? &wait : nullptr);
        }
        // Work asked for meanwhile runs in the next pass, after the events.
        const int after = m_wake.fetch_and(~(WakePending | Sleeping), std::memory_order_acquire);
        woken = (after & (WakePending | WorkPending)) || woken;
    }
    const int timersFired = includeTimers ? d->activateTimers() : 0;
    return woken || timersFired > 0;
}

// Qt's poll() watches the thread's socket notifiers: from the QtPoll bit
// on, every wakeUp() also writes Qt's eventfd, as Qt's own does. A wake-up
// before it found its event queued already (Qt sends posted events first).
bool IsleEventDispatcher::processEventsInQtPoll(QEventLoop::ProcessEventsFlags flags)
{
    // Work asked for before the QtPoll bit wrote no eventfd: no sleep then
    // (it runs after this pass).
    const int before = m_qtPollDepth++ == 0 ? m_wake.fetch_or(QtPoll, std::memory_order_acq_rel)
                                            : m_wake.load(std::memory_order_acquire);
    if (before & WorkPending)
        flags &= ~QEventLoop::WaitForMoreEvents;
    bool handled = false;
    try {
        handled = QEventDispatcherUNIX::processEvents(flags);
    } catch (...) { // an event handler's exception passes through, as in Qt's
        if (--m_qtPollDepth == 0)
            m_wake.fetch_and(~(QtPoll | WakePending), std::memory_order_acq_rel);
        throw;
    }
    // Nested in an event handler, the work runs too (as a posted event
    // would): left pending, it would keep every nested pass from sleeping.
    const int clear = --m_qtPollDepth == 0 ? QtPoll | WakePending | WorkPending : WorkPending;
    const int was = m_wake.fetch_and(~clear, std::memory_order_acquire);
    handled = (was & (WakePending | WorkPending)) || handled;
    runWork(was);
    return handled;
}

void IsleEventDispatcher::wakeUp()
{
    wake(WakePending);
}

void IsleEventDispatcher::requestWork()
{
    wake(WorkPending);
}

void IsleEventDispatcher::wake(int bits)
{
#ifdef __SANITIZE_THREAD__
    __tsan_release(this);
#endif
    const int was = m_wake.fetch_or(bits, std::memory_order_acq_rel);
    // Nothing of this object is touched from here on (see m_wake).
    if (was & QtPoll)
        QEventDispatcherUNIX::wakeUp();
    if (was & Sleeping)
        futexWakeOne(&m_wake);
}

#else // not Linux: Qt's dispatcher unchanged

bool IsleEventDispatcher::processEvents(QEventLoop::ProcessEventsFlags flags)
{
#ifdef __SANITIZE_THREAD__
    __tsan_acquire(this);
#endif
    return QEventDispatcherUNIX::processEvents(flags);
}

void IsleEventDispatcher::wakeUp()
{
#ifdef __SANITIZE_THREAD__
    __tsan_release(this);
#endif
    QEventDispatcherUNIX::wakeUp();
}

#endif
#endif
