// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "stop/stopmonitor_p.h"

#ifdef QISLE_HAVE_STOP_SIGNAL

#include <algorithm>
#include <csignal>
#include <thread>

#include <sched.h>
#include <unistd.h>

StopMonitor &StopMonitor::instance()
{
    // Leaked on purpose: the monitor thread may outlive static destruction.
    static StopMonitor *monitor = new StopMonitor;
    return *monitor;
}

StopMonitor::StopMonitor()
{
    std::thread thread([this] {
        // The monitor never handles the stop signal itself.
        sigset_t blocked;
        sigemptyset(&blocked);
        sigaddset(&blocked, SIGURG);
        pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
        pthread_setname_np(pthread_self(), "QIsle stop");
        // Whoever created it may have been pinned to a CPU: the monitor must
        // not compete with a Lua thread pinned there too.
        cpu_set_t all;
        CPU_ZERO(&all);
        for (long cpu = 0, n = sysconf(_SC_NPROCESSORS_ONLN); cpu < n && cpu < CPU_SETSIZE; ++cpu)
            CPU_SET(cpu, &all);
        pthread_setaffinity_np(pthread_self(), sizeof all, &all);
        run();
    });
    thread.detach();
}

void StopMonitor::add(StopWatch *watch)
{
    std::lock_guard lock(m_mutex);
    m_watches.push_back(watch);
}

void StopMonitor::remove(StopWatch *watch)
{
    std::lock_guard lock(m_mutex);
    m_watches.erase(std::remove(m_watches.begin(), m_watches.end(), watch), m_watches.end());
}

void StopMonitor::activate(StopWatch *watch)
{
    watch->active.store(true, std::memory_order_seq_cst);
    // Paired with run(): either the monitor's last look before sleeping
    // sees this watch active, or this sees the monitor asleep and wakes it.
    if (m_sleeping.load(std::memory_order_seq_cst)) {
        std::lock_guard lock(m_mutex);
        m_wake.notify_one();
    }
}

// A batch of results is due: signalled at once, then again after 1, 2, 4,
// ... polls (at most MaxFlushBackoff apart) while the same batch stays due.
// Signalled again at all because a signal that finds no request running on
// the thread arms nothing.
bool StopMonitor::flushDue(StopWatch &watch, std::int64_t flushAt, std::int64_t now)
{
    if (watch.flushSignaled != flushAt) {
        watch.flushSignaled = flushAt;
        watch.flushBackoff = 1;
    } else if (now < watch.flushRepeatAt) {
        return false;
    }
    const std::int64_t poll = std::chrono::nanoseconds(watch.interval).count();
    watch.flushRepeatAt = now + poll * watch.flushBackoff;
    watch.flushBackoff = std::min(watch.flushBackoff * 2, MaxFlushBackoff);
    return true;
}

void StopMonitor::run()
{
    using namespace std::chrono;
    std::unique_lock lock(m_mutex);
    microseconds lastInterval{};
    int linger = 0;
    for (;;) {
        microseconds interval = microseconds::max();
        std::int64_t now = 0;
        for (StopWatch *watch : m_watches) {
            if (!watch->active.load(std::memory_order_seq_cst))
                continue;
            interval = std::min(interval, watch->interval);
            bool due = watch->stopPending(); // asked every poll until the thread stops
            if (const std::int64_t flushAt = watch->flushAt.load(std::memory_order_relaxed); !due && flushAt) {
                if (!now)
                    now = steady_clock::now().time_since_epoch().count();
                due = now >= flushAt && flushDue(*watch, flushAt, now);
            }
            if (due)
                watch->signal();
        }
        if (interval != microseconds::max()) {
            lastInterval = interval;
            linger = LingerPolls;
        } else if (linger > 0) {
            // Nothing runs just now: a few polls more (LingerPolls) before sleeping.
            --linger;
            interval = lastInterval;
        }
        if (interval == microseconds::max()) {
            // Nothing runs: sleep until a thread starts requests.
            m_sleeping.store(true, std::memory_order_seq_cst);
            const bool anyActive = std::any_of(m_watches.begin(), m_watches.end(), [](StopWatch *w) {
                return w->active.load(std::memory_order_seq_cst);
            });
            if (!anyActive)
                m_wake.wait(lock);
            m_sleeping.store(false, std::memory_order_relaxed);
            continue;
        }
        m_wake.wait_for(lock, interval); // releases the lock: add/remove go on
    }
}

#endif
