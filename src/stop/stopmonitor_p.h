// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QtCore/qglobal.h>

#if defined(Q_OS_LINUX)
#  include <pthread.h>
#  define QISLE_HAVE_STOP_SIGNAL 1
#endif

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#ifdef QISLE_HAVE_STOP_SIGNAL

// One Lua thread as the monitor sees it.
struct StopWatch
{
    pthread_t thread;
    std::chrono::microseconds interval;
    std::function<bool()> stopPending; // asked on the monitor thread
    std::atomic<bool> active{false};   // requests run on the thread
    // steady_clock nanoseconds from which the thread has results to report
    // (isle.emit's batch): the monitor arms its hook then too. 0: none.
    std::atomic<std::int64_t> flushAt{0};
    // Monitor thread only: the flushAt it last signalled for, when it may
    // signal for it again, and after how many polls the next time. A thread
    // inside one long C function cannot run the hook until it returns, and
    // each signal interrupts that function's system calls (EINTR): a
    // signal a poll would be thousands a second.
    std::int64_t flushSignaled = 0;
    std::int64_t flushRepeatAt = 0;
    int flushBackoff = 1;

    // Sends the thread the stop signal (StopSignal's handler arms the hook).
    void signal() const;
};

// The process's one thread that watches running requests for signal stop
// mode. It polls only while some isle runs requests (every interval, the
// shortest of those watched) and for LingerPolls after, sleeps otherwise,
// and signals a Lua thread
// only when its request must stop, pause or time out, or has results to
// report (flushAt). So the Lua threads pay nothing while scripts run; the
// monitor pays a wake-up an interval.
//
// Every member: any thread.
class StopMonitor
{
public:
    static StopMonitor &instance();

    void add(StopWatch *watch);
    // After it returns the monitor neither asks nor signals the watch.
    void remove(StopWatch *watch);
    // The watch's thread starts running requests (it stops with
    // watch->active = false; the monitor notices by itself).
    void activate(StopWatch *watch);

private:
    StopMonitor();
    void run();
    static bool flushDue(StopWatch &watch, std::int64_t flushAt, std::int64_t now);
    static constexpr int MaxFlushBackoff = 128; // polls: 32 ms at the default 250 us
    // Idle polls before sleeping: waking the monitor is a futex wake on the
    // Lua thread's path, and another thread to schedule, per request.
    static constexpr int LingerPolls = 40;      // 10 ms at the default 250 us

    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::vector<StopWatch *> m_watches; // guarded by m_mutex
    std::atomic<bool> m_sleeping{false};
};

#endif
