// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QtCore/qglobal.h>

#ifdef QISLE_UNIX_DISPATCHER

#include "isle/requestqueue_p.h"

#include <QtCore/private/qeventdispatcher_unix_p.h>

#include <atomic>
#include <functional>

// The Lua thread's event dispatcher: Qt's plain poll()-based one rather than
// GLib's, which Qt picks for every thread by default -- no GMainContext and
// sources to make at each start (a bare QThread reached run() in 35-55 us
// instead of 74-126 at load 5; issue 18, row 7e). It handles everything the
// Lua thread needs -- posted events, timers, socket notifiers -- as Qt does
// with QT_NO_GLIB.
//
// On Linux, while the thread has no socket notifiers, it sleeps on a futex
// instead of poll()ing Qt's eventfd: a wake-up is then one futex wake, and
// only when the thread sleeps (Qt writes the eventfd on every first wake-up
// and reads it back after, with a poll() a pass). The request path's
// hand-off costs what a condition variable's does (issue 18, rows 3a, 6c).
// With socket notifiers it is Qt's own processEvents.
//
// On Linux it also runs the worker's drain when asked (requestWork()), after
// the posted events of a pass: waking the worker allocates, queues and
// delivers no event.
class IsleEventDispatcher final : public QEventDispatcherUNIX
#ifdef Q_OS_LINUX
    , public WorkSignal
#endif
{
public:
    bool processEvents(QEventLoop::ProcessEventsFlags flags) override;
    void wakeUp() override; // any thread

#ifdef Q_OS_LINUX
    // Lua thread: what requestWork() runs (empty: nothing).
    void setWork(std::function<void()> work) { m_work = std::move(work); }
    void requestWork() override; // any thread
#endif

#ifdef Q_OS_LINUX
private:
    bool processEventsInQtPoll(QEventLoop::ProcessEventsFlags flags);

    // m_wake's bits. One word, changed by wakeUp() in one atomic operation
    // and touched by nothing after it: once woken, the thread may end and
    // Qt delete this dispatcher while wakeUp() returns.
    enum : int {
        WakePending = 1, // woken since the thread last looked (posted events, interrupt)
        Sleeping = 2,    // the thread sleeps on the futex
        QtPoll = 4,      // the thread is in Qt's own processEvents (socket
                         // notifiers): wakeUp() writes Qt's eventfd too
        WorkPending = 8, // requestWork() since the work last ran
    };
    // wakeUp() and requestWork(): `bits` set, the thread woken as it sleeps.
    void wake(int bits);
    void runWork(int was) // Lua thread: `was`, the word the pass took
    {
        if ((was & WorkPending) && m_work)
            m_work();
    }

    std::atomic<int> m_wake{0};
    int m_qtPollDepth = 0; // Lua thread only: Qt's processEvents nested
    std::function<void()> m_work; // Lua thread only
#endif
};

#endif
