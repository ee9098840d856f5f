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

void StopMonitor::run()
{
    using namespace std::chrono;
    std::unique_lock lock(m_mutex);
    for (;;) {
        microseconds interval = microseconds::max();
        std::int64_t now = 0;
        for (StopWatch *watch : m_watches) {
            if (!watch->active.load(std::memory_order_seq_cst))
                continue;
            interval = std::min(interval, watch->interval);
            bool due = watch->stopPending();
            if (const std::int64_t flushAt = watch->flushAt.load(std::memory_order_relaxed); !due && flushAt) {
                if (!now)
                    now = steady_clock::now().time_since_epoch().count();
                due = now >= flushAt;
            }
            if (due)
                watch->signal();
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
